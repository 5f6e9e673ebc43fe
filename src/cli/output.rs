//! What several subcommands print the same way: pretty JSON, a progress bar.

use anyhow::Context as _;

use super::Failure;

/// Print a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .context("writing JSON")
        .map_err(Failure::Internal)?;
    println!("{text}");
    Ok(())
}

/// A bar on stderr: `{bar} done/total message`.
pub fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
