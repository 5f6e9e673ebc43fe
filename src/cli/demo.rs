//! `thyme-studio demo DIR`: write the demo project.

use std::path::PathBuf;
use std::time::Instant;

use super::Failure;

#[derive(clap::Args)]
pub struct DemoCommand {
    dir: PathBuf,
    /// Divide every scene's size by this (1 = full size; smaller scenes are quicker to make).
    #[arg(long, default_value_t = 1, hide = true)]
    scale: u32,
}

impl DemoCommand {
    pub fn run(self) -> Result<(), Failure> {
        if self.scale == 0 {
            return Err(Failure::user("--scale must be at least 1"));
        }
        let started = Instant::now();
        let project = thyme_studio::demo::write_demo(&self.dir, self.scale, &|step| {
            tracing::info!("{step}");
        })
        .map_err(|e| match e {
            thyme_studio::demo::DemoError::Store(s) => Failure::from(s),
            other => Failure::Internal(other.into()),
        })?;
        println!(
            "wrote {} in {:.1} s",
            project.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
