//! `thyme-studio inspect PATH`: the app's Inspect workspace on an agent trace or log.

use std::path::PathBuf;

use super::Failure;

#[derive(clap::Args)]
pub struct InspectCommand {
    path: PathBuf,
}

impl InspectCommand {
    pub fn run(self) -> Result<(), Failure> {
        let path = self.path;
        thyme_studio::trace::readers::LogFormat::detect(&path)
            .map_err(|e| Failure::User(e.into()))?;
        let mut config = thyme_studio::app::AppConfig::for_user(None);
        config.trace = Some(std::path::absolute(&path).unwrap_or(path));
        thyme_studio::app::run_with(config).map_err(Failure::Internal)
    }
}
