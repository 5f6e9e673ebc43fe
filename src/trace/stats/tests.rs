use super::*;
use crate::trace::{Run, Step, StepImage, TraceImage};

/// A run on a 1000x1000 original: `crops` code cells, each cropping the given rectangle and
/// enlarging it to 500 px wide (the last one failing when `error`), then an answer.
fn run(
    id: &str,
    category: Option<&str>,
    crops: &[[f64; 4]],
    error: bool,
    answer: Option<&str>,
    truth: Option<&str>,
) -> Trace {
    let mut steps = Vec::new();
    for (i, r) in crops.iter().enumerate() {
        steps.push(Step::Generate {
            text: "<code>".into(),
            stop: None,
            tokens: None,
            ms: None,
            sampling: Default::default(),
            rolled_back: false,
        });
        let failed = error && i + 1 == crops.len();
        steps.push(Step::Execute {
            raw_code: "img = image.crop((1, 2, 3, 4)).resize((500, 500))".into(),
            executed_code: String::new(),
            fixes: vec![],
            stdout: String::new(),
            stderr: String::new(),
            error: failed.then(|| "ValueError".to_owned()),
            outputs: vec![StepImage {
                image: TraceImage {
                    width: Some(500),
                    height: Some(500),
                    ..TraceImage::default()
                },
                source_rect: Some(*r),
                provenance: None,
            }],
            text_result: None,
            ms: None,
            fed_back: true,
            edited_from: None,
        });
    }
    if let Some(a) = answer {
        steps.push(Step::Answer {
            text: format!("<answer>{a}</answer>"),
            extracted: None,
            matches_ground_truth: None,
        });
    }
    Trace::new(
        Run {
            id: id.into(),
            question: "What is written on the sign?".into(),
            ground_truth: truth.map(str::to_owned),
            category: category.map(str::to_owned),
            images: vec![TraceImage {
                width: Some(1000),
                height: Some(1000),
                ..TraceImage::default()
            }],
            ..Run::default()
        },
        steps,
    )
}

/// Six runs whose numbers are worked out by hand below.
fn set() -> Vec<Trace> {
    vec![
        // text: a 10x10 crop (0.01 % of the area, zoom 50x), correct.
        run(
            "a",
            Some("text"),
            &[[0.0, 0.0, 10.0, 10.0]],
            false,
            Some("stop"),
            Some("stop"),
        ),
        // text: a 100x100 crop (1 %, zoom 5x) and a 500x500 one (25 %, 1x), wrong.
        run(
            "b",
            Some("text"),
            &[[0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 500.0, 500.0]],
            false,
            Some("go"),
            Some("stop"),
        ),
        // count: no tools, correct.
        run("c", Some("count"), &[], false, Some("3"), Some("3")),
        // count: no tools, wrong.
        run("d", Some("count"), &[], false, Some("4"), Some("3")),
        // no category: one crop of 50x20 (0.1 %, zoom 10x) whose cell failed, no answer.
        run(
            "e",
            None,
            &[[10.0, 10.0, 60.0, 30.0]],
            true,
            None,
            Some("x"),
        ),
        // no category: no ground truth, answered, no tools.
        run("f", None, &[], false, Some("maybe"), None),
    ]
}

fn group<'a>(s: &'a Stats, dim: Dimension, key: &str) -> &'a Group {
    s.groups
        .iter()
        .find(|g| g.dimension == dim && g.key == key)
        .unwrap_or_else(|| panic!("no group {dim:?} {key}"))
}

#[test]
fn a_hand_built_set_gives_its_known_numbers() {
    let s = compute(&set());
    assert_eq!(s.runs, 6);
    assert_eq!(
        (
            s.overall.correct,
            s.overall.wrong,
            s.overall.answered,
            s.overall.no_answer
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(s.accuracy, Some(0.5));
    assert_eq!(s.tool_use_rate, Some(0.5));
    assert_eq!(
        (s.executions, s.execution_errors, s.runs_with_errors),
        (4, 1, 1)
    );
    assert_eq!((s.crops.crops, s.crops.runs_with_crops), (4, 3));
    // Shares sorted: 0.0001, 0.001, 0.01, 0.25 -> p50 is the second of four (rounded index).
    assert_eq!(s.crops.area_share_p10, Some(0.0001));
    assert_eq!(s.crops.area_share_p90, Some(0.25));
    // Zooms sorted: 1, 5, 10, 50.
    assert_eq!(s.crops.zoom_p90, Some(50.0));

    let text = group(&s, Dimension::Category, "text");
    assert_eq!(
        (text.tally.runs, text.tally.correct, text.tally.wrong),
        (2, 1, 1)
    );
    assert_eq!(text.accuracy, Some(0.5));
    let count = group(&s, Dimension::Category, "count");
    assert_eq!((count.tally.runs, count.accuracy), (2, Some(0.5)));
    let none = group(&s, Dimension::Category, "(none)");
    assert_eq!(
        (none.tally.runs, none.tally.no_answer, none.tally.answered),
        (2, 1, 1)
    );
    assert_eq!(none.accuracy, None, "nothing graded there");

    assert_eq!(group(&s, Dimension::Executions, "0").tally.runs, 3);
    assert_eq!(group(&s, Dimension::Executions, "1").tally.runs, 2);
    assert_eq!(group(&s, Dimension::Executions, "2").tally.runs, 1);
    assert_eq!(group(&s, Dimension::ToolUse, "tools").accuracy, Some(0.5));
    assert_eq!(group(&s, Dimension::ToolUse, "no tools").tally.runs, 3);
    assert_eq!(group(&s, Dimension::Tool, "crop").tally.runs, 3);
    assert_eq!(group(&s, Dimension::Tool, "resize").tally.runs, 3);

    // Smallest crop per run: a 0.01 % -> under 0.1 %, b 1 % -> 1-10 %, e 0.1 % -> 0.1-1 %.
    assert_eq!(
        group(&s, Dimension::CropSize, "under 0.1%").tally.correct,
        1
    );
    assert_eq!(group(&s, Dimension::CropSize, "1-10%").tally.wrong, 1);
    assert_eq!(group(&s, Dimension::CropSize, "0.1-1%").tally.no_answer, 1);
    assert_eq!(group(&s, Dimension::CropSize, "no crop").tally.runs, 3);

    // Every run is in exactly one group of each single-key dimension.
    for dim in [
        Dimension::Category,
        Dimension::Executions,
        Dimension::ToolUse,
        Dimension::CropSize,
    ] {
        let n: usize = s
            .groups
            .iter()
            .filter(|g| g.dimension == dim)
            .map(|g| g.tally.runs)
            .sum();
        assert_eq!(n, 6, "{dim:?}");
    }
}

#[test]
fn groups_come_in_their_order_and_the_csv_holds_every_row() {
    let s = compute(&set());
    let buckets: Vec<&str> = s
        .groups
        .iter()
        .filter(|g| g.dimension == Dimension::CropSize)
        .map(|g| g.key.as_str())
        .collect();
    assert_eq!(buckets, ["under 0.1%", "0.1-1%", "1-10%", "no crop"]);
    let cats: Vec<&str> = s
        .groups
        .iter()
        .filter(|g| g.dimension == Dimension::Category)
        .map(|g| g.key.as_str())
        .collect();
    assert_eq!(cats, ["(none)", "count", "text"]);
    let csv = s.csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2 + s.groups.len());
    assert_eq!(lines[1], "all,all,6,2,2,1,1,0,0.5000");
    assert!(lines.contains(&"category,text,2,1,1,0,0,0,0.5000"));
    assert!(lines.contains(&"category,(none),2,0,0,1,1,0,"));
    assert!(s.text().contains("accuracy 50.0%"));
}

#[test]
fn no_runs_give_empty_numbers_not_a_division_by_zero() {
    let s = compute(&[]);
    assert_eq!((s.runs, s.accuracy, s.tool_use_rate), (0, None, None));
    assert!(s.groups.is_empty());
    assert_eq!(s.crops.area_share_p50, None);
    assert_eq!(s.csv().lines().count(), 2);
}

#[test]
fn fields_with_commas_are_quoted_in_the_csv() {
    let mut t = run("g", Some("signs, plates"), &[], false, Some("a"), Some("a"));
    t.run.category = Some("signs, \"plates\"".into());
    let csv = compute(&[t]).csv();
    assert!(
        csv.contains("category,\"signs, \"\"plates\"\"\",1,1,"),
        "{csv}"
    );
}

#[test]
fn crops_are_measured_against_the_target_boxes() {
    let with = |id: &str, target: Option<[f64; 4]>, crops: &[[f64; 4]]| {
        let mut t = run(id, None, crops, false, Some("a"), Some("a"));
        t.run.targets = target.into_iter().collect();
        t
    };
    let target = [0.0, 0.0, 100.0, 100.0];
    let set = [
        // The crop is the target: all of it, IoU 1, no context.
        with("t1", Some(target), &[target]),
        // Half of the target in a crop twice its size: just enough to count as looking.
        with("t2", Some(target), &[[50.0, 0.0, 250.0, 100.0]]),
        // A crop far from its target.
        with(
            "t3",
            Some([500.0, 500.0, 600.0, 600.0]),
            &[[0.0, 0.0, 100.0, 100.0]],
        ),
        with("t4", Some(target), &[]),
        with("t5", None, &[target]),
    ];
    let s = compute(&set);
    let t = &s.targets;
    assert_eq!(
        (
            t.runs_with_targets,
            t.looked_at_target,
            t.looked_elsewhere,
            t.never_zoomed
        ),
        (4, 2, 1, 1)
    );
    // Cover per run 1, 0.5, 0; IoU 1, 0.2, 0; crop over target 1, 2, 1.
    assert_eq!(t.cover_p50, Some(0.5));
    assert_eq!(t.iou_p50, Some(0.2));
    assert_eq!(
        (t.crop_over_target_p50, t.crop_over_target_p90),
        (Some(1.0), Some(2.0))
    );
    let looked = |key: &str| group(&s, Dimension::Looked, key).tally.runs;
    assert_eq!(looked("looked at the target"), 2);
    assert_eq!(looked("looked elsewhere"), 1);
    assert_eq!(looked("never zoomed"), 1);
    assert_eq!(looked("no target box"), 1);
    assert!(
        s.text()
            .contains("4 runs with a target box: 2 looked at it")
    );
    // A trace keeps its targets through our JSON.
    let back: Trace = serde_json::from_str(&serde_json::to_string(&set[0]).unwrap()).unwrap();
    assert_eq!(back.run.targets, vec![target]);
}
