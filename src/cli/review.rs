//! `thyme-studio review`: list verdicts, or accept, reject or withdraw a verdict on an image,
//! a box or a question of a project file (solo, or a team member's file: the verdict is then
//! sent to the server by the next sync, like any other edit).

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use thyme_studio::annotate::review::review_command;
use thyme_studio::dataset::review::{image_fingerprint, question_fingerprint, region_fingerprint};
use thyme_studio::dataset::{ImageRecord, QuestionId, RegionId, Review, ReviewTarget, Verdict};
use thyme_studio::store::{SqliteStore, Store, StoreError, now_ms};
use thyme_studio::team::state::ImageState;

#[derive(clap::Parser)]
pub struct ReviewCommand {
    /// The project file.
    file: PathBuf,
    /// An image: its file name or the start of its id (none: list every image's verdict).
    image: Option<String>,
    /// accept, reject or withdraw (none: show the image's items and their verdicts).
    action: Option<String>,
    /// The verdict is on this box (its id), not on the whole image.
    #[arg(long = "box", conflicts_with = "question")]
    region: Option<String>,
    /// The verdict is on this question (its id).
    #[arg(long)]
    question: Option<String>,
    /// For reject: one of the listed reasons.
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, default_value = "")]
    note: String,
    /// The fingerprint of the item as you looked at it (from the listing): the verdict is
    /// refused when the item has changed since.
    #[arg(long)]
    seen: Option<String>,
    /// Who gives the verdict (default: the team member the file is linked to, else $USER).
    #[arg(long = "as")]
    actor: Option<String>,
}

impl ReviewCommand {
    pub fn run(&self) -> anyhow::Result<()> {
        let mut store = SqliteStore::open(&self.file)?;
        let Some(name) = &self.image else {
            return list(&store);
        };
        let image = find(&store, name)?;
        let state = ImageState::read(&store, &image.id)?
            .ok_or_else(|| anyhow!("no image {name} in {}", self.file.display()))?;
        let Some(action) = &self.action else {
            show(&state);
            return Ok(());
        };
        let actor = self
            .actor
            .clone()
            .or_else(|| linked_member(&store))
            .unwrap_or_else(thyme_studio::store::default_actor);
        let after = match action.as_str() {
            "accept" => Some(Review::new(
                Verdict::Accepted,
                None,
                &self.note,
                &actor,
                now_ms(),
            )?),
            "reject" => Some(Review::new(
                Verdict::Rejected,
                self.reason.as_deref(),
                &self.note,
                &actor,
                now_ms(),
            )?),
            "withdraw" => None,
            other => bail!("'{other}' is not a review action (accept, reject, withdraw)"),
        };
        let target = self.target(&image)?;
        let what = format!("{} {}", target.kind_name(), target.id_text());
        let Some(mut command) = review_command(&state, target, after) else {
            bail!("{what} has no verdict to withdraw");
        };
        if let (Some(seen), thyme_studio::store::Command::SetReview { seen: s, .. }) =
            (&self.seen, &mut command)
        {
            s.clone_from(seen);
        }
        let description = command.describe();
        match store.apply(&actor, command) {
            Ok(_) => {}
            Err(e @ (StoreError::Conflict(_) | StoreError::ChangedSinceSeen { .. })) => bail!(
                "{e} (list it again: thyme-studio review {} {name})",
                self.file.display()
            ),
            Err(e) => return Err(e.into()),
        }
        println!(
            "{description}: {what} on {} (by {actor})",
            image.file_name()
        );
        if linked_member(&store).is_some() {
            println!("saved in this file; the next sync sends it to the team server");
        }
        Ok(())
    }

    fn target(&self, image: &ImageRecord) -> anyhow::Result<ReviewTarget> {
        let parse =
            |s: &str| uuid::Uuid::parse_str(s).with_context(|| format!("'{s}' is not an item id"));
        Ok(match (&self.region, &self.question) {
            (Some(b), _) => ReviewTarget::Region(RegionId(parse(b)?)),
            (None, Some(q)) => ReviewTarget::Question(QuestionId(parse(q)?)),
            (None, None) => ReviewTarget::Image(image.id.clone()),
        })
    }
}

/// The team member a project file is linked to, if it is.
fn linked_member(store: &SqliteStore) -> Option<String> {
    thyme_studio::team::client::TeamClient::open(store.path())
        .ok()
        .map(|c| c.member().to_owned())
}

fn find(store: &SqliteStore, name: &str) -> anyhow::Result<ImageRecord> {
    let images = store.images()?;
    let hits: Vec<&ImageRecord> = images
        .iter()
        .filter(|i| i.file_name() == name || i.id.as_str().starts_with(name))
        .collect();
    match hits.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no image named {name} (give its file name or the start of its id)"),
        _ => bail!("{} images match {name}; give more of the id", hits.len()),
    }
}

fn word(r: Option<&Review>) -> String {
    r.map_or("unreviewed".to_owned(), |r| {
        format!("{} by {}", r.describe(), r.by)
    })
}

fn list(store: &SqliteStore) -> anyhow::Result<()> {
    for image in store.images()? {
        let regions = store.regions(&image.id)?;
        let questions = store.questions(&image.id)?;
        let judged = |r: Option<&Review>, v: Verdict| r.is_some_and(|r| r.verdict == v);
        let count = |v: Verdict| {
            regions
                .iter()
                .filter(|r| judged(r.review.as_ref(), v))
                .count()
                + questions
                    .iter()
                    .filter(|q| judged(q.review.as_ref(), v))
                    .count()
        };
        println!(
            "{}  {}  {}  ({} boxes, {} questions; items accepted {}, rejected {})",
            image.id.short(),
            image.file_name(),
            word(image.review.as_ref()),
            regions.len(),
            questions.len(),
            count(Verdict::Accepted),
            count(Verdict::Rejected),
        );
    }
    Ok(())
}

fn show(state: &ImageState) {
    println!(
        "image {} {}: {} [seen {}]",
        state.image.id.short(),
        state.image.file_name(),
        word(state.image.review.as_ref()),
        image_fingerprint(&state.image, &state.regions, &state.questions)
    );
    for r in &state.regions {
        println!(
            "  box {} '{}': {} [seen {}]",
            r.id,
            r.label,
            word(r.review.as_ref()),
            region_fingerprint(r)
        );
    }
    for q in &state.questions {
        println!(
            "  question {} '{}': {} [seen {}]",
            q.id,
            q.text,
            word(q.review.as_ref()),
            question_fingerprint(q)
        );
    }
}
