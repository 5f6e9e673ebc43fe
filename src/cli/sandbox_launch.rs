//! `thyme-studio sandbox-launch` (hidden): the confining launcher the sandbox starts its
//! worker through. It applies every layer, tells the worker which are on, and becomes it.

use std::ffi::OsString;

use super::Failure;

#[derive(clap::Args)]
pub struct SandboxLaunchCommand {
    #[arg(long)]
    policy: String,
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

impl SandboxLaunchCommand {
    pub fn run(self) -> Result<(), Failure> {
        use std::os::unix::process::CommandExt;
        let policy: thyme_studio::sandbox::confine::Policy = serde_json::from_str(&self.policy)
            .map_err(|e| Failure::Internal(anyhow::anyhow!("bad sandbox policy: {e}")))?;
        let layers = thyme_studio::sandbox::confine::apply(&policy);
        let Some((program, args)) = self.command.split_first() else {
            return Err(Failure::Internal(anyhow::anyhow!("nothing to launch")));
        };
        let err = std::process::Command::new(program)
            .args(args)
            .env(
                "THYME_SANDBOX_LAYERS",
                serde_json::to_string(&layers).unwrap_or_default(),
            )
            .exec();
        Err(Failure::Internal(anyhow::anyhow!(
            "cannot start {}: {err}",
            std::path::Path::new(program).display()
        )))
    }
}
