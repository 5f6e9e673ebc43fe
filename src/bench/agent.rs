//! The agent loop's own cost per step: a replayed run of 10 code cells and an answer (21
//! steps), timed whole, minus the time inside the policy and inside the sandbox.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::agent::{Agent, Event, PromptProfile, Replay, Settings, Task};
use crate::geometry::ImageSize;
use crate::sandbox::{Sandbox, SandboxConfig};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub steps: usize,
    pub total_ms: f64,
    pub model_ms: f64,
    pub sandbox_ms: f64,
    pub loop_ms_per_step: f64,
}

pub fn run(cfg: SandboxConfig, dir: &Path) -> anyhow::Result<Report> {
    std::fs::create_dir_all(dir)?;
    let image = std::path::absolute(dir.join("photo.png"))?;
    image::RgbImage::from_fn(1600, 1200, |x, y| {
        image::Rgb([(x / 7) as u8, (y / 5) as u8, 60])
    })
    .save(&image)?;
    let mut script = String::new();
    for i in 0..10 {
        script.push_str(&format!(
            "<think>Step {i}: look at part {i}.</think><code>\n```python\npart_{i} = {i} * 2\nprint(part_{i})\n```\n</code>"
        ));
    }
    script.push_str("<think>Done.</think> <answer>18</answer>");
    let settings = Settings {
        max_segments: 11,
        ..Settings::default()
    };
    let sandbox = Sandbox::start(cfg)?;
    let mut agent = Agent::new(
        Box::new(Replay::new("scripted", script)),
        sandbox,
        PromptProfile::default(),
        settings,
        Task {
            image,
            size: ImageSize::new(1600, 1200),
            question: "What is the last part?".into(),
            ground_truth: Some("18".into()),
        },
    );
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let mut steps = 0;
    loop {
        let e = agent.step(&mut |_| {}, &cancel);
        steps += 1;
        if matches!(e, Event::Answered { .. } | Event::Finished { .. }) {
            break;
        }
    }
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (model_ms, sandbox_ms) = (agent.model_ms, agent.sandbox_ms);
    let trace = agent.close();
    anyhow::ensure!(
        trace.run.outcome == crate::trace::Outcome::Correct,
        "the replayed run did not answer correctly"
    );
    Ok(Report {
        steps,
        total_ms,
        model_ms,
        sandbox_ms,
        loop_ms_per_step: (total_ms - model_ms - sandbox_ms) / steps as f64,
    })
}
