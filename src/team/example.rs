//! A worked example of a team project, for trying team mode and its dashboard: the demo scenes
//! on the server, two of them gold, three simulated annotators of different care boxing and
//! answering through their own local journals, blind doubles, honeypots and a review round.
//!
//! The annotators' work is made from the demo's known boxes with per-annotator noise (shifted
//! edges, missed and extra boxes, wrong answers), so the report has something to tell apart.
//! Their edits are real edits, synced as any client's are; only their hands are simulated.

use std::path::{Path, PathBuf};

use super::client::TeamClient;
use super::review::{ReviewAction, Role};
use super::server::{BatchSpec, MAIN_LAYER, Selection, TeamServer};
use super::state::ImageState;
use crate::dataset::{Answer, Question, Region};
use crate::geometry::ImageRect;
use crate::rng::Rng;
use crate::store::{Command, SqliteStore, Store, now_ms};

/// How careful a simulated annotator is.
struct Hand {
    name: &'static str,
    /// Largest edge shift as a share of the box's side.
    jitter: f64,
    miss: f64,
    extra: usize,
    wrong_answer: f64,
}

const HANDS: [Hand; 3] = [
    Hand {
        name: "ann",
        jitter: 0.04,
        miss: 0.05,
        extra: 0,
        wrong_answer: 0.05,
    },
    Hand {
        name: "bob",
        jitter: 0.35,
        miss: 0.25,
        extra: 2,
        wrong_answer: 0.3,
    },
    Hand {
        name: "cat",
        jitter: 0.15,
        miss: 0.1,
        extra: 1,
        wrong_answer: 0.15,
    },
];

/// What was made.
#[derive(Debug, Clone)]
pub struct ExampleSummary {
    pub demo_project: PathBuf,
    /// Each member's local project file (open one in the app to be that member).
    pub member_files: Vec<(String, PathBuf)>,
}

fn noisy(truth: &ImageState, hand: &Hand, rng: &mut Rng) -> (Vec<Region>, Vec<Question>) {
    let size = truth.image.size;
    let mut regions = Vec::new();
    let mut questions = Vec::new();
    for r in &truth.regions {
        if rng.unit() < hand.miss {
            continue;
        }
        let (w, h) = (r.rect.x1 - r.rect.x0, r.rect.y1 - r.rect.y0);
        let mut shift = |side: f64| (rng.unit() * 2.0 - 1.0) * hand.jitter * side;
        let x0 = (r.rect.x0 + shift(w)).max(0.0);
        let y0 = (r.rect.y0 + shift(h)).max(0.0);
        let x1 = (r.rect.x1 + shift(w)).min(f64::from(size.width));
        let y1 = (r.rect.y1 + shift(h)).min(f64::from(size.height));
        if x1 - x0 < 2.0 || y1 - y0 < 2.0 {
            continue;
        }
        let mine = Region::new(
            truth.image.id.clone(),
            ImageRect::new(x0, y0, x1, y1),
            r.label.clone(),
        );
        for q in truth
            .questions
            .iter()
            .filter(|q| q.regions.first() == Some(&r.id))
        {
            let answer = match &q.answer {
                Answer::Choice { options, correct } if rng.unit() < hand.wrong_answer => {
                    Answer::Choice {
                        options: options.clone(),
                        correct: (correct + 1) % options.len().max(1),
                    }
                }
                Answer::Open { text } if rng.unit() < hand.wrong_answer => Answer::Open {
                    text: text.chars().rev().collect(),
                },
                other => other.clone(),
            };
            questions.push(Question::new(
                truth.image.id.clone(),
                vec![mine.id],
                q.text.clone(),
                answer,
                q.category.clone(),
            ));
        }
        regions.push(mine);
    }
    for _ in 0..hand.extra {
        let x = f64::from(rng.range(0, size.width.saturating_sub(60)));
        let y = f64::from(rng.range(0, size.height.saturating_sub(60)));
        regions.push(Region::new(
            truth.image.id.clone(),
            ImageRect::new(x, y, x + 40.0, y + 30.0),
            "something",
        ));
    }
    (regions, questions)
}

/// Fill the (empty) team database at `url` with the example; files go under `dir`. The demo
/// scenes are drawn at 1/`scale` of their size.
pub fn write_example(url: &str, dir: &Path, scale: u32) -> anyhow::Result<ExampleSummary> {
    let demo_dir = dir.join("demo");
    let demo_project = crate::demo::write_demo(&demo_dir, scale.max(1), &|_| {})?;
    let demo = SqliteStore::open(&demo_project)?;
    let server = TeamServer::init(url, "lea", now_ms())?;
    if !server.store().images()?.is_empty() {
        anyhow::bail!(
            "{} already holds images; the example needs an empty team project",
            server.store().url()
        );
    }
    // Each member gets a login of their own; their files are linked with it, as a real
    // team's are (the lead's file uses the owner's connection).
    let mut logins = std::collections::BTreeMap::new();
    for h in &HANDS {
        let invite = server.add_member(h.name, Role::Annotator, now_ms())?;
        logins.insert(h.name, invite.url);
    }
    let invite = server.add_member("rev", Role::Reviewer, now_ms())?;
    logins.insert("rev", invite.url);
    for c in demo.categories()? {
        if !server.categories()?.iter().any(|k| k.name == c.name) {
            server.add_category("lea", c)?;
        }
    }
    let mut truths = Vec::new();
    for image in demo.images()? {
        if let Some(s) = ImageState::read(&demo, &image.id)? {
            truths.push(s);
        }
    }
    anyhow::ensure!(
        truths.len() >= 3,
        "the demo project has {} images, not 3",
        truths.len()
    );
    // The first two scenes are gold (annotated by the lead); the third is the work.
    server.add_images("lea", &truths[..2], now_ms())?;
    for t in &truths[..2] {
        server.set_gold("lea", &t.image.id, now_ms())?;
    }
    server.add_images(
        "lea",
        &[ImageState::bare(truths[2].image.clone())],
        now_ms(),
    )?;
    server.create_batch(
        "lea",
        &BatchSpec {
            name: "example".into(),
            selection: Selection::Count(1),
            // The careless hand gets the primary item, so the review has something to reject.
            annotators: vec!["bob".into(), "ann".into(), "cat".into()],
            lease_ms: 8 * 3_600_000,
            double_share: 1.0,
            honeypots_per_annotator: 2,
            seed: 5,
        },
        now_ms(),
    )?;
    let team_dir = dir.join("team");
    std::fs::create_dir_all(&team_dir)?;
    let mut member_files = Vec::new();
    let mut rng = Rng::new(11);
    for hand in &HANDS {
        let file = team_dir.join(format!("{}.thyme", hand.name));
        let login = logins.get(hand.name).map_or(url, String::as_str);
        let mut client = TeamClient::join(&file, login, hand.name)?;
        let as_member = TeamServer::open(login)?;
        client.sync(&as_member, now_ms())?;
        for a in server.assignments_of(hand.name)? {
            let Some(truth) = truths.iter().find(|t| t.image.id == a.image) else {
                continue;
            };
            let (regions, questions) = noisy(truth, hand, &mut rng);
            for region in regions {
                client.store_mut().apply(
                    hand.name,
                    Command::AddRegion {
                        region,
                        links: Vec::new(),
                    },
                )?;
            }
            for question in questions {
                client
                    .store_mut()
                    .apply(hand.name, Command::AddQuestion { question })?;
            }
        }
        client.sync(&as_member, now_ms())?;
        for a in as_member.assignments_of(hand.name)? {
            if a.layer == MAIN_LAYER {
                as_member.act(
                    hand.name,
                    &a.image,
                    hand.name,
                    &ReviewAction::Submit,
                    now_ms(),
                )?;
            }
        }
        member_files.push((hand.name.to_owned(), file));
    }
    // The reviewer: opens the submitted work, rejects the sloppy hand's with a reason and a
    // pinned comment, accepts the rest (through the reviewer's own login).
    let as_rev = TeamServer::open(logins.get("rev").map_or(url, String::as_str))?;
    for a in server
        .all_assignments()?
        .into_iter()
        .filter(|a| a.layer == MAIN_LAYER)
    {
        let Some(who) = a.annotator.clone() else {
            continue;
        };
        as_rev.act("rev", &a.image, &who, &ReviewAction::Open, now_ms())?;
        let action = if who == "bob" {
            if let Some(r) = server.store().regions(&a.image)?.first() {
                as_rev.pin_comment(
                    "rev",
                    &a.image,
                    (r.rect.x0 + r.rect.x1) / 2.0,
                    (r.rect.y0 + r.rect.y1) / 2.0,
                    "this box cuts the sign",
                    now_ms(),
                )?;
            }
            ReviewAction::Reject {
                reason: "box too loose".into(),
                note: "tighten the boxes to the objects' edges".into(),
            }
        } else {
            ReviewAction::Accept
        };
        as_rev.act("rev", &a.image, &who, &action, now_ms())?;
    }
    for name in ["rev", "lea"] {
        let file = team_dir.join(format!("{name}.thyme"));
        let login = logins.get(name).map_or(url, String::as_str);
        let mut client = TeamClient::join(&file, login, name)?;
        client.sync(&TeamServer::open(login)?, now_ms())?;
        member_files.push((name.to_owned(), file));
    }
    Ok(ExampleSummary {
        demo_project,
        member_files,
    })
}
