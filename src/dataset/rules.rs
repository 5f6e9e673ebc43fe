//! The data rules, as pure functions with typed errors.
//!
//! Errors ([`RuleError`]) make data unacceptable; warnings ([`RuleWarning`]) are shown to the
//! person but do not refuse anything (an image whose longest side is at most 2048 px can still be
//! imported, it is just not what the RL set is for).

use thiserror::Error;

use super::{Answer, Question};
use crate::geometry::{ImageRect, ImageSize};

/// Largest share of the image a box may cover to count as a small-object target.
pub const MAX_AREA_RATIO: f64 = 0.05;
/// The longest side an image must exceed to be "high resolution".
pub const MIN_LONGEST_SIDE: u32 = 2048;
/// Fewest and most options of a multiple-choice question.
pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 6;

/// Why a piece of data is not acceptable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleError {
    #[error("the box has a coordinate that is not a finite number")]
    NotFinite,
    #[error("the box is empty: {width} x {height} px (both sides must be positive)")]
    Degenerate { width: f64, height: f64 },
    #[error("the box {rect:?} reaches outside the {size} image")]
    OutsideImage { rect: ImageRect, size: ImageSize },
    #[error(
        "the box covers {:.2} % of the image; a small-object target may cover at most 5 %",
        ratio * 100.0
    )]
    AreaTooLarge { ratio: f64 },
    #[error("the question text is empty")]
    EmptyQuestion,
    #[error("the answer is empty")]
    EmptyAnswer,
    #[error("the question is linked to no box")]
    NoRegion,
    #[error("a multiple-choice question needs 2 to 6 options, this one has {count}")]
    OptionCount { count: usize },
    #[error("option {index} is empty")]
    EmptyOption { index: usize },
    #[error("options {first} and {second} say the same thing")]
    DuplicateOption { first: usize, second: usize },
    #[error("the correct option {index} does not exist (there are {count} options)")]
    CorrectOutOfRange { index: usize, count: usize },
    #[error("the category name is empty")]
    EmptyCategory,
}

/// Something worth telling the person, but not a refusal.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleWarning {
    #[error(
        "the image is {size}; its longest side should exceed {MIN_LONGEST_SIDE} px for the high-resolution set"
    )]
    SmallImage { size: ImageSize },
    #[error("the answer \"{answer}\" appears word for word in the question")]
    AnswerInQuestion { answer: String },
}

/// A box must be finite, non-empty and inside `[0, W] x [0, H]` (touching the border is fine).
pub fn check_rect(rect: &ImageRect, size: ImageSize) -> Result<(), RuleError> {
    if !rect.is_finite() {
        return Err(RuleError::NotFinite);
    }
    if rect.x0 >= rect.x1 || rect.y0 >= rect.y1 {
        return Err(RuleError::Degenerate {
            width: rect.width(),
            height: rect.height(),
        });
    }
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    if rect.x0 < 0.0 || rect.y0 < 0.0 || rect.x1 > w || rect.y1 > h {
        return Err(RuleError::OutsideImage { rect: *rect, size });
    }
    Ok(())
}

/// A small-object target covers at most 5 % of the image; exactly 5 % is allowed.
pub fn check_area(rect: &ImageRect, size: ImageSize) -> Result<(), RuleError> {
    // Compare `area * 20 <= W * H` so that exactly 5 % is not lost to rounding of 0.05.
    let area = rect.area();
    let total = size.pixels() as f64;
    if area * 20.0 <= total {
        Ok(())
    } else {
        Err(RuleError::AreaTooLarge {
            ratio: rect.area_ratio(size),
        })
    }
}

/// Images whose longest side is at most 2048 px are accepted with a warning.
pub fn check_image_size(size: ImageSize) -> Option<RuleWarning> {
    (size.longest_side() <= MIN_LONGEST_SIDE).then_some(RuleWarning::SmallImage { size })
}

/// Every rule a question breaks, in a stable order (empty when it is acceptable).
pub fn question_errors(q: &Question) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if q.text.trim().is_empty() {
        errors.push(RuleError::EmptyQuestion);
    }
    if q.regions.is_empty() {
        errors.push(RuleError::NoRegion);
    }
    if q.category.trim().is_empty() {
        errors.push(RuleError::EmptyCategory);
    }
    errors.extend(answer_errors(&q.answer));
    errors
}

/// The first rule a question breaks.
pub fn check_question(q: &Question) -> Result<(), RuleError> {
    match question_errors(q).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Every rule an answer breaks.
pub fn answer_errors(answer: &Answer) -> Vec<RuleError> {
    let mut errors = Vec::new();
    match answer {
        Answer::Open { text } => {
            if text.trim().is_empty() {
                errors.push(RuleError::EmptyAnswer);
            }
        }
        Answer::Choice { options, correct } => {
            let count = options.len();
            if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&count) {
                errors.push(RuleError::OptionCount { count });
            }
            for (index, option) in options.iter().enumerate() {
                if option.trim().is_empty() {
                    errors.push(RuleError::EmptyOption { index });
                }
            }
            let canon: Vec<String> = options.iter().map(|o| o.trim().to_lowercase()).collect();
            for second in 0..canon.len() {
                if canon[second].is_empty() {
                    continue;
                }
                if let Some(first) = canon[..second].iter().position(|c| *c == canon[second]) {
                    errors.push(RuleError::DuplicateOption { first, second });
                }
            }
            if *correct >= count {
                errors.push(RuleError::CorrectOutOfRange {
                    index: *correct,
                    count,
                });
            }
        }
    }
    errors
}

/// Warnings about a question that do not refuse it.
pub fn question_warnings(q: &Question) -> Vec<RuleWarning> {
    let mut warnings = Vec::new();
    if let Answer::Open { text } = &q.answer {
        let answer = text.trim();
        if !answer.is_empty() && q.text.to_lowercase().contains(&answer.to_lowercase()) {
            warnings.push(RuleWarning::AnswerInQuestion {
                answer: answer.to_owned(),
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageId, RegionId};

    const SIZE: ImageSize = ImageSize {
        width: 4000,
        height: 3000,
    };

    fn question(answer: Answer) -> Question {
        Question::new(
            ImageId::of_bytes(b"x"),
            vec![RegionId::new()],
            "What is written on the sign?",
            answer,
            "ocr",
        )
    }

    fn open(text: &str) -> Answer {
        Answer::Open { text: text.into() }
    }

    fn choice(options: &[&str], correct: usize) -> Answer {
        Answer::Choice {
            options: options.iter().map(|s| (*s).to_owned()).collect(),
            correct,
        }
    }

    #[test]
    fn a_one_pixel_box_is_valid() {
        let r = ImageRect::new(10.0, 10.0, 11.0, 11.0);
        assert_eq!(check_rect(&r, SIZE), Ok(()));
        assert_eq!(check_area(&r, SIZE), Ok(()));
    }

    #[test]
    fn boxes_touching_every_border_are_valid() {
        assert_eq!(
            check_rect(&ImageRect::new(0.0, 0.0, 5.0, 5.0), SIZE),
            Ok(())
        );
        assert_eq!(
            check_rect(&ImageRect::new(3995.0, 2995.0, 4000.0, 3000.0), SIZE),
            Ok(())
        );
    }

    #[test]
    fn a_box_crossing_the_border_is_outside() {
        let r = ImageRect::new(3990.0, 10.0, 4000.5, 20.0);
        assert!(matches!(
            check_rect(&r, SIZE),
            Err(RuleError::OutsideImage { .. })
        ));
        let r = ImageRect::new(-0.5, 10.0, 10.0, 20.0);
        assert!(matches!(
            check_rect(&r, SIZE),
            Err(RuleError::OutsideImage { .. })
        ));
    }

    #[test]
    fn zero_width_or_inverted_boxes_are_degenerate() {
        for r in [
            ImageRect::new(10.0, 10.0, 10.0, 20.0),
            ImageRect::new(10.0, 20.0, 30.0, 20.0),
            ImageRect::new(30.0, 10.0, 10.0, 20.0),
        ] {
            assert!(matches!(
                check_rect(&r, SIZE),
                Err(RuleError::Degenerate { .. })
            ));
        }
    }

    #[test]
    fn nan_coordinates_are_refused() {
        let r = ImageRect::new(f64::NAN, 0.0, 10.0, 10.0);
        assert_eq!(check_rect(&r, SIZE), Err(RuleError::NotFinite));
    }

    #[test]
    fn exactly_five_percent_is_allowed() {
        // 4000 x 3000 = 12,000,000 px; 5 % = 600,000 = 800 x 750.
        let r = ImageRect::new(0.0, 0.0, 800.0, 750.0);
        assert_eq!(check_area(&r, SIZE), Ok(()));
    }

    #[test]
    fn a_hair_over_five_percent_is_refused() {
        let r = ImageRect::new(0.0, 0.0, 800.01, 750.0);
        match check_area(&r, SIZE) {
            Err(RuleError::AreaTooLarge { ratio }) => assert!(ratio > 0.05 && ratio < 0.0501),
            other => panic!("expected AreaTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn exactly_five_percent_on_awkward_sizes_is_allowed() {
        // 7 x 3 image: 5 % is 1.05 px^2; a 1.05 x 1 box is exactly 5 %.
        let size = ImageSize::new(7, 3);
        assert_eq!(
            check_area(&ImageRect::new(0.0, 0.0, 1.05, 1.0), size),
            Ok(())
        );
    }

    #[test]
    fn longest_side_of_2048_warns_and_2049_does_not() {
        assert!(check_image_size(ImageSize::new(2048, 1000)).is_some());
        assert!(check_image_size(ImageSize::new(1000, 2048)).is_some());
        assert!(check_image_size(ImageSize::new(2049, 100)).is_none());
    }

    #[test]
    fn a_good_open_question_passes() {
        assert_eq!(question_errors(&question(open("47"))), vec![]);
    }

    #[test]
    fn empty_question_and_answer_are_refused() {
        let mut q = question(open("   "));
        q.text = " \n".into();
        assert_eq!(
            question_errors(&q),
            vec![RuleError::EmptyQuestion, RuleError::EmptyAnswer]
        );
    }

    #[test]
    fn a_question_needs_a_region() {
        let mut q = question(open("47"));
        q.regions.clear();
        assert_eq!(check_question(&q), Err(RuleError::NoRegion));
    }

    #[test]
    fn choice_needs_two_to_six_options() {
        assert_eq!(
            answer_errors(&choice(&["a"], 0)),
            vec![RuleError::OptionCount { count: 1 }]
        );
        assert_eq!(answer_errors(&choice(&["a", "b"], 1)), vec![]);
        assert_eq!(
            answer_errors(&choice(&["a", "b", "c", "d", "e", "f"], 5)),
            vec![]
        );
        assert_eq!(
            answer_errors(&choice(&["a", "b", "c", "d", "e", "f", "g"], 0)),
            vec![RuleError::OptionCount { count: 7 }]
        );
    }

    #[test]
    fn options_must_be_distinct_ignoring_case_and_spaces() {
        assert_eq!(
            answer_errors(&choice(&["Red", "blue", " red "], 1)),
            vec![RuleError::DuplicateOption {
                first: 0,
                second: 2
            }]
        );
    }

    #[test]
    fn empty_options_are_named() {
        assert_eq!(
            answer_errors(&choice(&["red", " "], 0)),
            vec![RuleError::EmptyOption { index: 1 }]
        );
    }

    #[test]
    fn the_correct_option_must_exist() {
        assert_eq!(
            answer_errors(&choice(&["red", "blue"], 2)),
            vec![RuleError::CorrectOutOfRange { index: 2, count: 2 }]
        );
    }

    #[test]
    fn an_answer_inside_the_question_warns() {
        let mut q = question(open("sign"));
        assert_eq!(
            question_warnings(&q),
            vec![RuleWarning::AnswerInQuestion {
                answer: "sign".into()
            }]
        );
        q.answer = open("47");
        assert!(question_warnings(&q).is_empty());
    }

    #[test]
    fn error_messages_are_plain_language() {
        let e = RuleError::AreaTooLarge { ratio: 0.0712 };
        assert_eq!(
            e.to_string(),
            "the box covers 7.12 % of the image; a small-object target may cover at most 5 %"
        );
    }
}
