//! The step machine with the Replay and Manual policies and the real sandbox: a crop-and-answer
//! run, failing code in each mode, the segment limit and the fallback, GRPO-ATS's stop at
//! `<code>`, and malformed model text. Needs the sandbox runtime (`bash scripts/test`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use thyme_studio::agent::{
    Agent, Decoding, Event, Manual, Mode, PromptProfile, Replay, Settings, State, Task,
};
use thyme_studio::geometry::ImageSize;
use thyme_studio::paths::AppDirs;
use thyme_studio::sandbox::{Runtime, Sandbox, SandboxConfig};
use thyme_studio::trace::{Outcome, Provenance, Step};

struct Fixture {
    _dir: tempfile::TempDir,
    image: PathBuf,
    cfg: SandboxConfig,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("photo.png");
    image::RgbImage::from_fn(2496, 1392, |x, y| {
        image::Rgb([(x / 10) as u8, (y / 6) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let runtime = Runtime::at(AppDirs::for_user().sandbox_runtime());
    assert!(
        runtime.installed().is_some(),
        "the sandbox runtime is not set up: run `bash scripts/test`"
    );
    let mut cfg = SandboxConfig::new(
        runtime,
        dir.path().join("runs"),
        PathBuf::from(env!("CARGO_BIN_EXE_thyme-studio")),
    );
    cfg.step_timeout = Duration::from_secs(5);
    Fixture {
        _dir: dir,
        image,
        cfg,
    }
}

fn agent(f: &Fixture, policy: Box<dyn thyme_studio::agent::Policy>, settings: Settings) -> Agent {
    Agent::new(
        policy,
        Sandbox::start(f.cfg.clone()).unwrap(),
        PromptProfile::default(),
        settings,
        Task {
            image: f.image.clone(),
            size: ImageSize::new(2496, 1392),
            question: "What is written on the sign?".into(),
            ground_truth: Some("ML4".into()),
        },
    )
}

const CROP: &str = "<think>The sign is small; zoom in.</think><code>\n```python\nimg = Image.open(image_path)\nc = img.crop((1250, 1030, 1360, 1070)).resize((220, 80))\nc.save('/mnt/data/temp_processed_images/sign.png')\nprint('/mnt/data/temp_processed_images/sign.png')\n```\n</code>";
const ANSWER: &str = "<think>It reads ML4.</think> <answer>ML4</answer>";

fn no() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn a_replayed_crop_and_answer_run_executes_for_real() {
    let f = fixture();
    let script = format!("{CROP}<sandbox_output><image></sandbox_output>{ANSWER}");
    let mut a = agent(
        &f,
        Box::new(Replay::new("scripted", script)),
        Settings::default(),
    );
    let mut streamed = String::new();
    let e = a.step(&mut |t| streamed.push_str(t), &no());
    assert!(
        matches!(e, Event::Generated { ref stop, .. } if stop.as_deref() == Some("</code>")),
        "{e:?}"
    );
    assert_eq!(streamed, CROP);
    assert!(matches!(a.state, State::Execute { .. }));
    // The pending cell can be edited before it runs: make the crop a different size.
    assert!(a.edit_pending_code(
        "img = Image.open(image_path)\nc = img.crop((1250, 1030, 1360, 1070)).resize((330, 192))\nc.save('/mnt/data/temp_processed_images/sign.png')\nprint('/mnt/data/temp_processed_images/sign.png')"
    ));
    assert_eq!(
        a.step(&mut |_| {}, &no()),
        Event::Executed {
            ok: true,
            images: 1
        }
    );
    assert!(
        a.turn()
            .ends_with("</code><sandbox_output><image></sandbox_output>")
    );
    assert_eq!(
        a.step(&mut |_| {}, &no()),
        Event::Answered {
            answer: "ML4".into()
        }
    );
    let t = a.close();
    assert_eq!(t.run.outcome, Outcome::Correct);
    assert_eq!(t.run.model.as_deref(), Some("replay (scripted)"));
    let Step::Execute { outputs, fixes, .. } = &t.steps[1] else {
        panic!("{:?}", t.steps)
    };
    assert_eq!(
        (outputs[0].image.width, outputs[0].image.height),
        (Some(330), Some(192))
    );
    assert_eq!(
        outputs[0].source_rect,
        Some([1250.0, 1030.0, 1360.0, 1094.0])
    );
    assert_eq!(outputs[0].provenance, Some(Provenance::Sandbox));
    assert!(fixes.iter().any(|x| x.kind == "crop_box"));
    assert!(
        t.summary
            .unwrap()
            .flags
            .contains(&"crop-fixed-by-sandbox".to_owned())
    );
}

#[test]
fn failing_code_is_rolled_back_in_reference_mode_and_fed_back_when_training_faithful() {
    let f = fixture();
    let bad = "<think>Try.</think><code>print(undefined_name)</code>";
    // Reference: the failed segment is dropped; the script's next cell works.
    let script = format!("{bad}{CROP}{ANSWER}");
    let mut a = agent(
        &f,
        Box::new(Replay::new("scripted", script.clone())),
        Settings::default(),
    );
    let events = a.run_to_end(&no());
    assert!(
        events.contains(&Event::RolledBack { retries: 1 }),
        "{events:?}"
    );
    assert!(events.contains(&Event::Answered {
        answer: "ML4".into()
    }));
    assert!(
        !a.turn().contains("undefined_name"),
        "the failed segment left the turn"
    );
    let t = a.close();
    assert!(matches!(
        &t.steps[0],
        Step::Generate {
            rolled_back: true,
            ..
        }
    ));
    assert!(matches!(
        &t.steps[1],
        Step::Execute {
            fed_back: false,
            edited_from: None,
            error: Some(_),
            ..
        }
    ));
    assert!(t.summary.unwrap().flags.contains(&"rolled-back".to_owned()));
    // Training-faithful: the error goes back to the model inside the same turn.
    let settings = Settings {
        mode: Mode::TrainingFaithful,
        ..Settings::default()
    };
    let mut a = agent(&f, Box::new(Replay::new("scripted", script)), settings);
    a.run_to_end(&no());
    assert!(
        a.turn().contains("<sandbox_output>Sandbox for"),
        "{}",
        a.turn()
    );
    assert!(a.turn().contains("undefined_name"));
}

#[test]
fn the_segment_limit_ends_in_the_no_tool_fallback() {
    let f = fixture();
    let manual = Manual::new();
    for _ in 0..3 {
        manual.push("<think>Compute.</think><code>print(1)</code>");
    }
    manual.push("<answer>ML4</answer>");
    let settings = Settings {
        max_segments: 3,
        ..Settings::default()
    };
    let mut a = agent(&f, Box::new(manual.clone()), settings);
    let events = a.run_to_end(&no());
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Executed { .. }))
            .count(),
        3
    );
    assert!(
        events.contains(&Event::Answered {
            answer: "ML4".into()
        }),
        "{events:?}"
    );
    match &a.state {
        State::Done { why } => assert!(
            why.contains("fallback") && why.contains("segment limit"),
            "{why}"
        ),
        s => panic!("{s:?}"),
    }
    // Without the fallback the run just ends.
    let manual = Manual::new();
    manual.push("<code>print(2)</code>");
    let settings = Settings {
        max_segments: 1,
        fallback: false,
        ..Settings::default()
    };
    let mut a = agent(&f, Box::new(manual), settings);
    a.run_to_end(&no());
    assert_eq!(a.close().run.outcome, Outcome::NoAnswer);
}

#[test]
fn grpo_ats_stops_at_code_and_writes_the_code_greedily() {
    let f = fixture();
    let script = format!("{CROP}{ANSWER}");
    let settings = Settings {
        decoding: Decoding::GrpoAts,
        ..Settings::default()
    };
    let mut a = agent(&f, Box::new(Replay::new("scripted", script)), settings);
    let e = a.step(&mut |_| {}, &no());
    assert!(
        matches!(e, Event::Generated { ref stop, .. } if stop.as_deref() == Some("<code>")),
        "{e:?}"
    );
    let e = a.step(&mut |_| {}, &no());
    assert!(
        matches!(e, Event::Generated { ref stop, .. } if stop.as_deref() == Some("</code>")),
        "{e:?}"
    );
    assert!(matches!(a.state, State::Execute { .. }));
    let t = a.trace();
    let temps: Vec<f64> = t
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Generate { sampling, .. } => sampling.get("temperature").and_then(|v| v.as_f64()),
            _ => None,
        })
        .collect();
    assert_eq!(temps, [1.0, 0.0]);
}

#[test]
fn malformed_model_text_never_panics() {
    let f = fixture();
    for text in [
        "<think>no closing tag <code>print(1)",
        "<code>print(1)</code><code>print(2)</code>",
        "<answer></answer>",
        "<code><code>print(1)</code></code>",
        "</code></answer><answer>",
        "",
    ] {
        let manual = Manual::new();
        manual.push(text);
        manual.push("<answer>x</answer>");
        let mut a = agent(&f, Box::new(manual), Settings::default());
        let events = a.run_to_end(&no());
        assert!(
            matches!(events.last(), Some(Event::Finished { .. })),
            "{text}: {events:?}"
        );
        let t = a.close();
        if text == "<code>print(1)</code><code>print(2)</code>" {
            let Step::Execute { stdout, .. } = &t.steps[1] else {
                panic!()
            };
            assert_eq!(
                stdout, "1\n",
                "only the first code block runs, as in the reference"
            );
        }
        if text == "<answer></answer>" {
            assert!(
                t.steps
                    .iter()
                    .any(|s| matches!(s, Step::Answer { extracted: Some(e), .. } if e.is_empty()))
            );
        }
    }
}

#[test]
fn the_run_command_prints_the_steps_and_writes_the_trace() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("turn.txt");
    std::fs::write(&script, format!("{CROP}{ANSWER}")).unwrap();
    let out = dir.path().join("run.zip");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args([
            "run",
            "--question",
            "What is written on the sign?",
            "--ground-truth",
            "ML4",
            "--image",
        ])
        .arg(&f.image)
        .arg("--script")
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("[sandbox: ok, 1 image(s)]") && text.contains("outcome: correct"),
        "{text}"
    );
    let loaded =
        thyme_studio::trace::readers::read(&out, thyme_studio::trace::readers::LogFormat::Ours)
            .unwrap();
    assert_eq!(loaded.traces[0].crops().len(), 1);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["run", "--question", "q", "--policy", "http", "--image"])
        .arg(&f.image)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

/// A policy that keeps every request it is asked and answers at once.
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<thyme_studio::agent::policy::Request>>>);

impl thyme_studio::agent::Policy for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }

    fn generate(
        &mut self,
        request: &thyme_studio::agent::policy::Request,
        _on_text: &mut dyn FnMut(&str),
        _cancel: &AtomicBool,
    ) -> Result<thyme_studio::agent::policy::Segment, thyme_studio::agent::policy::PolicyError>
    {
        self.0.lock().unwrap().push(request.clone());
        Ok(thyme_studio::agent::policy::Segment {
            text: ANSWER.into(),
            stop: Some("</answer>".into()),
            tokens: None,
            ms: 0.0,
            origin: Default::default(),
        })
    }
}

#[test]
fn a_system_prompt_file_is_sent_byte_for_byte_and_its_hash_is_in_the_trace() {
    let f = fixture();
    // Our own words in the shape of a prompt file: leading spaces, inner blank lines,
    // indented bullets, no newline at the end.
    let prompt = f.image.with_file_name("prompt.txt");
    let text = "You are careful.\n\nLook closer with code:\n    * wrap it as <code>\n    ```python\n    # code\n    ```\n    </code>\n    * print the path you saved.";
    std::fs::write(&prompt, text).unwrap();
    let profile = PromptProfile::default().with_system_file(&prompt).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut agent = Agent::new(
        Box::new(Recorder(seen.clone())),
        Sandbox::start(f.cfg.clone()).unwrap(),
        profile,
        Settings::default(),
        Task {
            image: f.image.clone(),
            size: ImageSize::new(2496, 1392),
            question: "What is written on the sign?".into(),
            ground_truth: None,
        },
    );
    agent.run_to_end(&no());
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first.system.as_bytes(), text.as_bytes());
    let expected_user = format!(
        "<image>\nWhat is written on the sign?\n\n### User Image Path:** \"{}\"\n### User Image Size:** \"2496x1392\"\n\n### **Output Format (strict adherence required):**\n\n<think>Your detailed reasoning process, including any code, should go here.</think>\n<answer>Your final answer to the user's question goes here.</answer>\n",
        f.image.display()
    );
    assert_eq!(first.user, expected_user);
    assert_eq!(first.images, vec![f.image.clone()]);
    let trace = agent.close();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    assert_eq!(
        trace.run.system_prompt_sha256.as_deref(),
        Some(sha.as_str())
    );
}

/// A policy that plays back segments and keeps the assistant text of every request it got.
struct Recording {
    segments: std::collections::VecDeque<String>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl thyme_studio::agent::Policy for Recording {
    fn name(&self) -> String {
        "recording".into()
    }

    fn generate(
        &mut self,
        request: &thyme_studio::agent::Request,
        _on_text: &mut dyn FnMut(&str),
        _cancel: &AtomicBool,
    ) -> Result<thyme_studio::agent::Segment, thyme_studio::agent::PolicyError> {
        self.seen.lock().unwrap().push(request.assistant.clone());
        let text = self.segments.pop_front().unwrap_or_default();
        let stop = ["</code>", "</answer>"]
            .into_iter()
            .find(|s| text.ends_with(s))
            .map(str::to_owned);
        Ok(thyme_studio::agent::Segment {
            text,
            stop,
            tokens: None,
            ms: 0.0,
            origin: Default::default(),
        })
    }
}

#[test]
fn an_edited_cell_becomes_the_models_context_and_the_step_says_a_person_edited_it() {
    let f = fixture();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let policy = Recording {
        segments: [CROP.to_owned(), ANSWER.to_owned()].into(),
        seen: seen.clone(),
    };
    let mut a = agent(&f, Box::new(policy), Settings::default());
    a.step(&mut |_| {}, &no());
    let edited = "img = Image.open(image_path)\nc = img.crop((100, 100, 300, 200)).resize((400, 200))\nc.save('/mnt/data/temp_processed_images/other.png')\nprint('/mnt/data/temp_processed_images/other.png')";
    assert!(a.edit_pending_code(edited));
    // The model's turn now holds the code that will run, fenced as the model wrote it.
    assert!(
        a.turn().contains(
            "```python\nimg = Image.open(image_path)\nc = img.crop((100, 100, 300, 200))"
        )
    );
    assert!(!a.turn().contains("1250, 1030"), "{}", a.turn());
    assert!(
        a.turn()
            .starts_with("<think>The sign is small; zoom in.</think><code>")
    );
    assert_eq!(
        a.step(&mut |_| {}, &no()),
        Event::Executed {
            ok: true,
            images: 1
        }
    );
    assert!(matches!(a.step(&mut |_| {}, &no()), Event::Answered { .. }));
    // The model continued from the edited code and the output of that code.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].contains("crop((100, 100, 300, 200))"),
        "{}",
        seen[1]
    );
    assert!(!seen[1].contains("1250, 1030"));
    assert!(seen[1].ends_with("</code><sandbox_output><image></sandbox_output>"));
    // The trace keeps both: the code that ran and, marked as a person's edit, the model's.
    let t = a.close();
    let Step::Execute {
        raw_code,
        edited_from,
        outputs,
        ..
    } = &t.steps[1]
    else {
        panic!("{:?}", t.steps)
    };
    assert!(raw_code.contains("crop((100, 100, 300, 200))"));
    assert!(
        edited_from
            .as_deref()
            .unwrap()
            .contains("crop((1250, 1030, 1360, 1070))")
    );
    assert_eq!(outputs[0].source_rect, Some([100.0, 100.0, 300.0, 200.0]));
    // The record survives writing and reading.
    let json = serde_json::to_string(&t).unwrap();
    let back: thyme_studio::trace::Trace = serde_json::from_str(&json).unwrap();
    let Step::Execute {
        edited_from: back_from,
        raw_code: back_code,
        ..
    } = &back.steps[1]
    else {
        panic!("{:?}", back.steps)
    };
    assert_eq!((back_from, back_code), (edited_from, raw_code));
}

#[test]
fn a_cell_edited_back_to_the_models_code_is_not_an_edit() {
    let f = fixture();
    let script = format!("{CROP}<sandbox_output><image></sandbox_output>{ANSWER}");
    let mut a = agent(
        &f,
        Box::new(Replay::new("scripted", script)),
        Settings::default(),
    );
    a.step(&mut |_| {}, &no());
    let State::Execute { code } = a.state.clone() else {
        panic!("{:?}", a.state)
    };
    assert!(a.edit_pending_code("print('something else')"));
    assert!(a.edit_pending_code(&code));
    a.step(&mut |_| {}, &no());
    let t = a.close();
    let Step::Execute { edited_from, .. } = &t.steps[1] else {
        panic!("{:?}", t.steps)
    };
    assert_eq!(edited_from, &None);
}

#[test]
fn a_fork_replays_the_recorded_steps_for_real_then_another_policy_writes_on() {
    use thyme_studio::agent::{Fork, ForkFrom};
    let f = fixture();
    let script = format!("{CROP}<sandbox_output><image></sandbox_output>{ANSWER}");
    let mut a = agent(
        &f,
        Box::new(Replay::new("scripted", script)),
        Settings::default(),
    );
    a.run_to_end(&no());
    let recorded = a.close();
    assert!(matches!(recorded.steps[2], Step::Generate { .. }));

    // Fork at the answer: the crop is played back (and runs again), a new policy answers.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let then = Recording {
        segments: ["<think>A second look says MLA.</think> <answer>MLA</answer>".to_owned()].into(),
        seen: seen.clone(),
    };
    let from = ForkFrom {
        trace: recorded.clone(),
        at_step: 2,
        turn: None,
    };
    assert_eq!(from.segments(), 1);
    let mut b = agent(
        &f,
        Box::new(Fork::new(&from, Box::new(then))),
        Settings::default(),
    );
    b.set_forked_from(&recorded.run.id, 2);
    b.run_to_end(&no());
    let fork = b.close();
    assert_eq!(
        fork.run.forked_from,
        Some(thyme_studio::trace::ForkPoint {
            run: recorded.run.id.clone(),
            step: 2
        })
    );
    assert!(fork.run.model.as_deref().unwrap().starts_with("fork of"));
    let Step::Generate { text, sampling, .. } = &fork.steps[0] else {
        panic!("{:?}", fork.steps)
    };
    assert_eq!(text, CROP);
    assert_eq!(sampling.get("replayed"), Some(&serde_json::json!(true)));
    let Step::Execute { outputs, .. } = &fork.steps[1] else {
        panic!("{:?}", fork.steps)
    };
    assert_eq!(outputs.len(), 1, "the played-back code ran again");
    let Step::Generate { sampling, .. } = &fork.steps[2] else {
        panic!("{:?}", fork.steps)
    };
    assert_eq!(sampling.get("replayed"), None);
    // The new policy saw the played-back turn, with the fresh sandbox output.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with(CROP));
    assert!(seen[0].ends_with("<sandbox_output><image></sandbox_output>"));
    assert_eq!(fork.run.outcome, Outcome::Wrong);
    assert_eq!(
        recorded.run.outcome,
        Outcome::Correct,
        "the recorded run is untouched"
    );
}

#[test]
fn at_a_fork_a_persons_turn_is_played_as_the_models_and_marked_then_the_policy_writes_on() {
    use thyme_studio::agent::{Fork, ForkFrom};
    let f = fixture();
    let script = format!("{CROP}<sandbox_output><image></sandbox_output>{ANSWER}");
    let mut a = agent(
        &f,
        Box::new(Replay::new("scripted", script)),
        Settings::default(),
    );
    a.run_to_end(&no());
    let recorded = a.close();

    // Fork at the first model step with a person's turn that crops elsewhere; the policy
    // answers after seeing that turn's fresh sandbox output.
    let mine = CROP.replace("(1250, 1030, 1360, 1070)", "(1200, 1000, 1400, 1100)");
    assert_ne!(mine, CROP);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let then = Recording {
        segments: ["<think>Still ML4.</think> <answer>ML4</answer>".to_owned()].into(),
        seen: seen.clone(),
    };
    let from = ForkFrom {
        trace: recorded.clone(),
        at_step: 0,
        turn: Some(mine.clone()),
    };
    assert_eq!(from.segments(), 0);
    let mut b = agent(
        &f,
        Box::new(Fork::new(&from, Box::new(then))),
        Settings::default(),
    );
    b.run_to_end(&no());
    let fork = b.close();
    let Step::Generate { text, sampling, .. } = &fork.steps[0] else {
        panic!("{:?}", fork.steps)
    };
    assert_eq!(text, &mine);
    assert_eq!(
        sampling.get("edited_by_a_person"),
        Some(&serde_json::json!(true))
    );
    assert_eq!(sampling.get("replayed"), None);
    let Step::Execute { outputs, .. } = &fork.steps[1] else {
        panic!("{:?}", fork.steps)
    };
    assert_eq!(outputs.len(), 1, "the person's cell ran");
    let Step::Generate { sampling, .. } = &fork.steps[2] else {
        panic!("{:?}", fork.steps)
    };
    assert!(sampling.get("edited_by_a_person").is_none());
    // The policy wrote on from the person's text, not the recorded one.
    let seen = seen.lock().unwrap().clone();
    assert!(seen[0].starts_with(&mine), "{}", seen[0]);
    // The lint names the step.
    let flags = thyme_studio::trace::lint::lint(&fork);
    assert!(
        flags
            .iter()
            .any(|fl| fl.name == "edited-by-a-person" && fl.step == Some(0)),
        "{flags:?}"
    );
}
