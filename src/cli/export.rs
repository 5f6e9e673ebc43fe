//! `thyme-studio export FILE --format F --out OUT`: the project's annotations in a format
//! trainers and evaluators read, with its manifest.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use thyme_studio::exchange::{ChoiceStyle, ExportOptions, Filter};
use thyme_studio::store::SqliteStore;

use super::Failure;
use super::output::{print_json, progress_bar};

#[derive(clap::Args)]
pub struct ExportCommand {
    file: PathBuf,
    /// thyme-rl, coco, yolo, swift, llava or jsonl (lossless canonical).
    #[arg(long, value_parser = parse_format)]
    format: thyme_studio::exchange::Format,
    /// The output file (a folder for yolo).
    #[arg(long)]
    out: PathBuf,
    /// Image paths: absolute, relative (to the output's folder) or copy (into images/).
    #[arg(long, default_value = "absolute", value_parser = parse_paths)]
    paths: thyme_studio::exchange::PathMode,
    /// Multiple-choice solutions as letters (A, B, ...) or as the option's text.
    #[arg(long, default_value = "letters", value_parser = ["letters", "text"])]
    choices: String,
    #[command(flatten)]
    items: super::args::ItemFilter,
    /// Keep boxes over 5 % of the image (left out by default).
    #[arg(long)]
    allow_large_boxes: bool,
    /// Only questions the latest difficulty check (`curate run`) flagged so: needs-tools,
    /// too-easy, suspect or flaky (repeatable: any of them).
    #[arg(long = "difficulty", value_parser = parse_flag)]
    difficulty: Vec<thyme_studio::curate::Flag>,
    /// A prompt profile (TOML) for thyme-rl; default: the built-in one.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Take the system prompt from this text file, byte for byte (e.g. a Thyme checkout's
    /// scripts/prompt.txt).
    #[arg(long)]
    system_prompt_file: Option<PathBuf>,
    /// Split by image into named parts, stratified by category: train=0.8,val=0.1,test=0.1.
    #[arg(long)]
    split: Option<String>,
    /// The seed of the split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the manifest the export would write, and write nothing.
    #[arg(long)]
    manifest_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl ExportCommand {
    pub fn run(self) -> Result<(), Failure> {
        let store = SqliteStore::open(&self.file)?;
        let options = self.options()?;
        if self.manifest_only {
            let manifest = thyme_studio::exchange::manifest_only(&store, &options, &self.out)?;
            println!("{manifest}");
            return Ok(());
        }
        let bar = progress_bar();
        let started = Instant::now();
        let report = thyme_studio::exchange::export(
            &store,
            &options,
            &self.out,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
            &AtomicBool::new(false),
        )?;
        bar.finish_and_clear();
        if self.json {
            print_json(&report)?;
        } else {
            println!("{}", report.summary());
            println!("in {:.2} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// The export's options from the flags.
    fn options(&self) -> Result<ExportOptions, Failure> {
        let mut options = ExportOptions::new(self.format);
        options.paths = self.paths;
        options.choices = if self.choices == "text" {
            ChoiceStyle::Text
        } else {
            ChoiceStyle::Letters
        };
        options.filter = Filter {
            allow_large_boxes: self.allow_large_boxes,
            questions: self.flagged_questions()?,
            ..self.items.filter()
        };
        if let Some(p) = &self.profile {
            options.profile =
                thyme_studio::agent::PromptProfile::load(p).map_err(|e| Failure::User(e.into()))?;
        }
        if let Some(f) = &self.system_prompt_file {
            options.profile = options
                .profile
                .with_system_file(f)
                .map_err(|e| Failure::User(e.into()))?;
        }
        if let Some(spec) = &self.split {
            options.split = Some(
                thyme_studio::exchange::SplitSpec::parse(spec, self.seed)
                    .map_err(|e| Failure::User(e.into()))?,
            );
        }
        Ok(options)
    }
}

impl ExportCommand {
    /// The questions `--difficulty` keeps (None without it).
    fn flagged_questions(
        &self,
    ) -> Result<Option<std::collections::BTreeSet<thyme_studio::dataset::QuestionId>>, Failure>
    {
        if self.difficulty.is_empty() {
            return Ok(None);
        }
        let attempts = thyme_studio::curate::AttemptStore::open(&self.file)
            .map_err(|e| Failure::User(e.into()))?;
        let wanted = self.difficulty.iter().copied().collect();
        let found = thyme_studio::curate::flagged(
            &attempts,
            None,
            &wanted,
            &thyme_studio::curate::Thresholds::default(),
        )
        .map_err(|e| Failure::User(e.into()))?;
        match found {
            Some(q) => Ok(Some(q)),
            None => Err(Failure::User(anyhow::anyhow!(
                "--difficulty needs a difficulty check first: thyme-studio curate run {} ...",
                self.file.display()
            ))),
        }
    }
}

pub(super) fn parse_flag(s: &str) -> Result<thyme_studio::curate::Flag, String> {
    thyme_studio::curate::Flag::parse(s)
        .ok_or_else(|| "one of needs-tools, too-easy, suspect, flaky".to_owned())
}

fn parse_format(s: &str) -> Result<thyme_studio::exchange::Format, String> {
    thyme_studio::exchange::Format::parse(s)
        .ok_or_else(|| "one of thyme-rl, coco, yolo, swift, llava, jsonl".to_owned())
}

fn parse_paths(s: &str) -> Result<thyme_studio::exchange::PathMode, String> {
    thyme_studio::exchange::PathMode::parse(s)
        .ok_or_else(|| "one of absolute, relative, copy".to_owned())
}
