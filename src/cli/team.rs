//! `thyme-studio team ...`: a team project from the command line, for leads, reviewers and
//! scripts: make one, add members and images, deal batches, sync a local file, review, report.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use thyme_studio::dataset::{ImageId, QuestionId, RegionId, Review, ReviewTarget};
use thyme_studio::store::{SqliteStore, Store, now_ms};
use thyme_studio::team::client::{Resolution, TeamClient};
use thyme_studio::team::cluster::LocalCluster;
use thyme_studio::team::report::{ReportInputs, TeamReport};
use thyme_studio::team::review::{REJECT_REASONS, ReviewAction, Role};
use thyme_studio::team::server::{BatchSpec, Selection, TeamServer};
use thyme_studio::team::soak::{SoakOptions, run_soak, soak_client};
use thyme_studio::team::state::ImageState;

#[derive(clap::Subcommand)]
pub enum TeamCommand {
    /// Make a team project in a PostgreSQL database (postgres://user@host:port/db); you are
    /// its first lead. Safe to run again.
    Init {
        url: String,
        #[arg(long)]
        lead: String,
    },
    /// Add a member (annotator unless --role says otherwise), or change their role.
    AddAnnotator {
        url: String,
        name: String,
        /// annotator, reviewer or lead.
        #[arg(long, default_value = "annotator")]
        role: String,
    },
    /// Take a member off the team: their login stops working at once; their unsent work
    /// stays in their local file.
    Remove {
        url: String,
        name: String,
        #[arg(long = "as")]
        lead: String,
    },
    /// The connection string of a linked local file's member (password masked unless
    /// --show), to check with `psql` what the member's login may see.
    Credentials {
        file: PathBuf,
        #[arg(long)]
        show: bool,
    },
    /// Images, members, synced edits and every annotator's progress.
    Status { url: String },
    /// Put a local project's images (with their boxes and questions) on the server.
    AddImages {
        url: String,
        project: PathBuf,
        #[arg(long = "as")]
        lead: String,
    },
    /// Make the shared annotations of an image its gold (for honeypots).
    Gold {
        url: String,
        /// Image id (or its first characters) or file name.
        image: String,
        #[arg(long = "as")]
        lead: String,
    },
    /// Deal unassigned images to annotators as a batch with leases.
    Batch(BatchArgs),
    /// Free items whose lease ran out (nobody submitted them).
    Reclaim {
        url: String,
        #[arg(long = "as")]
        lead: String,
    },
    /// Give an item to another annotator ("" as --from for a reclaimed one).
    Reassign {
        url: String,
        image: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long = "as")]
        lead: String,
    },
    /// Link a local project file to the team as a member (made when missing).
    Join {
        url: String,
        file: PathBuf,
        #[arg(long = "as")]
        member: String,
    },
    /// One sync round for a linked local file: send its edits, fetch the others'.
    Sync {
        file: PathBuf,
        /// Settle an image's conflicts: keep-mine or take-theirs (with --image).
        #[arg(long)]
        resolve: Option<String>,
        #[arg(long)]
        image: Option<String>,
    },
    /// The items waiting for review, after a sync of a reviewer's or lead's linked file (what
    /// the Team window's Review tab lists), with what changed since each was submitted.
    Queue { file: PathBuf },
    /// Move an item through review: start, submit, fix, open, accept, reject, reopen.
    Review(ReviewArgs),
    /// Pin a comment on a point of an image (image pixels).
    Comment {
        url: String,
        image: String,
        #[arg(long)]
        x: f64,
        #[arg(long)]
        y: f64,
        #[arg(long)]
        text: String,
        #[arg(long = "as")]
        author: String,
    },
    /// The quality report per annotator (and overall); --csv writes it as CSV.
    Report {
        url: String,
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// A reviewer's verdict on one box or question of an item.
    Verdict(VerdictArgs),
    /// Fill an empty team database with a worked example (the demo scenes, three simulated
    /// annotators of different care, doubles, honeypots, a review round); files go into DIR.
    Example {
        url: String,
        dir: PathBuf,
        #[arg(long, default_value_t = 2, hide = true)]
        scale: u32,
    },
    /// Start a throwaway PostgreSQL on loopback for trying team mode on one machine; prints
    /// its URL and runs until stopped (Ctrl-C).
    Serve,
    /// Soak test: simulated annotators edit, sync and get reviewed against one server that
    /// is restarted, while one client is killed mid-sync; reports anything lost.
    Soak {
        #[arg(long, default_value_t = 15)]
        annotators: usize,
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        #[arg(long, default_value_t = 2)]
        restarts: usize,
        #[arg(long, default_value_t = 1)]
        kills: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// One simulated annotator of the soak (started by `team soak`).
    #[command(hide = true)]
    SoakClient {
        url: String,
        file: PathBuf,
        #[arg(long = "as")]
        member: String,
        #[arg(long)]
        until_ms: i64,
        #[arg(long)]
        seed: u64,
    },
}

/// Block until SIGINT or SIGTERM arrives (the signals are taken, so the process lives on to
/// stop its server cleanly).
fn wait_for_stop_signal() {
    // SAFETY: plain libc calls on a local signal set; the mask is set before any other thread
    // of this command starts, and sigwait only reads the set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sig: libc::c_int = 0;
        libc::sigwait(&set, &mut sig);
    }
}

fn find_image(server: &TeamServer, key: &str) -> anyhow::Result<ImageId> {
    let images = server.store().images()?;
    let hits: Vec<_> = images
        .iter()
        .filter(|i| {
            i.id.as_str().starts_with(key)
                || i.path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy() == key)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => bail!("no image '{key}' in the team project"),
        many => bail!("'{key}' names {} images; give more of the id", many.len()),
    }
}

fn parse_action(
    action: &str,
    reason: Option<String>,
    note: String,
) -> anyhow::Result<ReviewAction> {
    Ok(match action {
        "start" => ReviewAction::Start,
        "submit" => ReviewAction::Submit,
        "fix" => ReviewAction::Fix,
        "open" => ReviewAction::Open,
        "accept" => ReviewAction::Accept,
        "reopen" => ReviewAction::Reopen,
        "withdraw" => ReviewAction::Withdraw,
        "reject" => ReviewAction::Reject {
            reason: reason.ok_or_else(|| {
                anyhow!(
                    "reject needs --reason, one of: {}",
                    REJECT_REASONS.join(", ")
                )
            })?,
            note,
        },
        other => bail!(
            "'{other}' is not a review action (start, submit, fix, open, accept, reject, reopen, withdraw)"
        ),
    })
}

impl TeamCommand {
    pub fn run(self) -> Result<(), super::Failure> {
        team(self).map_err(super::Failure::from)
    }
}

fn team(cmd: TeamCommand) -> anyhow::Result<()> {
    let now = now_ms();
    match cmd {
        TeamCommand::Init { url, lead } => {
            let server = TeamServer::init(&url, &lead, now)?;
            println!(
                "team project ready at {} (lead: {lead}, on the owner's connection)",
                server.store().url()
            );
            for invite in server.invite_missing(&[&lead])? {
                print_invite(&invite);
            }
        }
        TeamCommand::AddAnnotator { url, name, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow!("'{role}' is not a role (annotator, reviewer, lead)"))?;
            let invite = TeamServer::open(&url)?.add_member(&name, role, now)?;
            println!("{name} is on the team as {}", role.as_str());
            print_invite(&invite);
        }
        TeamCommand::Remove { url, name, lead } => {
            TeamServer::open(&url)?.remove_member(&lead, &name, now)?;
            println!("{name} is off the team; their login no longer connects");
        }
        TeamCommand::Credentials { file, show } => credentials(&file, show)?,
        TeamCommand::Status { url } => {
            for line in TeamServer::open(&url)?.status_lines(now)? {
                println!("{line}");
            }
        }
        TeamCommand::AddImages { url, project, lead } => add_images(&url, &project, &lead, now)?,
        TeamCommand::Gold { url, image, lead } => {
            let server = TeamServer::open(&url)?;
            let id = find_image(&server, &image)?;
            server.set_gold(&lead, &id, now)?;
            println!("image {} is gold now", id.short());
        }
        TeamCommand::Batch(args) => args.run(now)?,
        TeamCommand::Reclaim { url, lead } => {
            let freed = TeamServer::open(&url)?.reclaim_expired(&lead, now)?;
            println!("{} item(s) freed", freed.len());
            for a in freed {
                println!("  {}", a.image.short());
            }
        }
        TeamCommand::Reassign {
            url,
            image,
            from,
            to,
            lead,
        } => {
            let server = TeamServer::open(&url)?;
            let id = find_image(&server, &image)?;
            server.reassign(&lead, &id, &from, &to, now)?;
            println!("image {} is {to}'s now", id.short());
        }
        TeamCommand::Join { url, file, member } => {
            let server = TeamServer::open(&url)?;
            server.role_of(&member)?;
            if let Some((me, _)) = server.login()
                && me != &member
            {
                bail!("this join string is {me}'s, not {member}'s");
            }
            let mut client = TeamClient::join(&file, &url, &member)?;
            let report = client.sync(&server, now)?;
            println!(
                "{} linked to the team as {member}; {} image(s) fetched",
                file.display(),
                report.pulled_images
            );
        }
        TeamCommand::Sync {
            file,
            resolve,
            image,
        } => sync(&file, resolve.as_deref(), image, now)?,
        TeamCommand::Review(args) => args.run(now)?,
        TeamCommand::Queue { file } => queue(&file)?,
        TeamCommand::Comment {
            url,
            image,
            x,
            y,
            text,
            author,
        } => {
            let server = TeamServer::open(&url)?;
            let id = find_image(&server, &image)?;
            let n = server.pin_comment(&author, &id, x, y, &text, now)?;
            println!("comment {n} pinned at ({x:.0}, {y:.0})");
        }
        TeamCommand::Verdict(args) => args.run(now)?,
        TeamCommand::Example { url, dir, scale } => example(&url, &dir, scale)?,
        TeamCommand::Report { url, csv } => report(&url, csv)?,
        TeamCommand::Serve => serve()?,
        TeamCommand::Soak {
            annotators,
            minutes,
            restarts,
            kills,
            seed,
        } => soak(SoakOptions {
            annotators,
            duration_ms: (minutes * 60_000.0) as i64,
            restarts,
            kills,
            seed,
        })?,
        TeamCommand::SoakClient {
            url,
            file,
            member,
            until_ms,
            seed,
        } => soak_client(&url, &file, &member, until_ms, seed)?,
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BatchArgs {
    url: String,
    #[arg(long = "as")]
    lead: String,
    #[arg(long)]
    name: String,
    /// Annotators, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    to: Vec<String>,
    /// Every unassigned image under this folder.
    #[arg(long, group = "pick")]
    folder: Option<String>,
    /// The first N unassigned images by path.
    #[arg(long, group = "pick")]
    count: Option<usize>,
    /// N unassigned images at random.
    #[arg(long, group = "pick")]
    random: Option<usize>,
    #[arg(long, default_value_t = 8.0)]
    lease_hours: f64,
    /// Share of images a second annotator also does, blind.
    #[arg(long, default_value_t = 0.0)]
    double: f64,
    /// Gold images mixed into each annotator's share.
    #[arg(long, default_value_t = 0)]
    honeypots: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl BatchArgs {
    fn run(self, now: i64) -> anyhow::Result<()> {
        let BatchArgs {
            url,
            lead,
            name,
            to,
            folder,
            count,
            random,
            lease_hours,
            double,
            honeypots,
            seed,
        } = self;
        let selection = match (folder, count, random) {
            (Some(f), None, None) => Selection::Folder(f),
            (None, Some(n), None) => Selection::Count(n),
            (None, None, Some(n)) => Selection::Random { count: n, seed },
            _ => bail!("pick the images with one of --folder, --count or --random"),
        };
        let server = TeamServer::open(&url)?;
        let summary = server.create_batch(
            &lead,
            &BatchSpec {
                name,
                selection,
                annotators: to,
                lease_ms: (lease_hours * 3_600_000.0) as i64,
                double_share: double,
                honeypots_per_annotator: honeypots,
                seed,
            },
            now,
        )?;
        println!(
            "batch {}: {} image(s), {} double, {} honeypot(s)",
            summary.id, summary.images, summary.doubles, summary.honeypots
        );
        for (who, n) in &summary.per_annotator {
            println!("  {who}: {n}");
        }
        Ok(())
    }
}

#[derive(clap::Args)]
pub struct VerdictArgs {
    url: String,
    image: String,
    #[arg(long)]
    annotator: String,
    #[arg(long = "as")]
    reviewer: String,
    /// The box's id (from `team status` or an export).
    #[arg(long, group = "item")]
    r#box: Option<String>,
    #[arg(long, group = "item")]
    question: Option<String>,
    /// Reject with this listed reason (accept when absent).
    #[arg(long)]
    reject: Option<String>,
    #[arg(long, default_value = "")]
    note: String,
}

impl VerdictArgs {
    fn run(self, now: i64) -> anyhow::Result<()> {
        let VerdictArgs {
            url,
            image,
            annotator,
            reviewer,
            r#box,
            question,
            reject,
            note,
        } = self;
        let server = TeamServer::open(&url)?;
        let id = find_image(&server, &image)?;
        let parse =
            |s: &str| uuid::Uuid::parse_str(s).map_err(|e| anyhow!("'{s}' is not an item id: {e}"));
        let (kind, item, target) = match (r#box, question) {
            (Some(b), None) => {
                let t = ReviewTarget::Region(RegionId(parse(&b)?));
                ("box", b, t)
            }
            (None, Some(q)) => {
                let t = ReviewTarget::Question(QuestionId(parse(&q)?));
                ("question", q, t)
            }
            _ => bail!("name the item with --box ID or --question ID"),
        };
        let verdict = match &reject {
            None => Review::accepted(&reviewer, &note, now),
            Some(reason) => Review::rejected(&reviewer, reason, &note, now)?,
        };
        server.review_item(&reviewer, &id, &annotator, &target, Some(verdict), now)?;
        println!(
            "{kind} {item}: {}",
            if reject.is_none() {
                "accepted"
            } else {
                "rejected"
            }
        );
        Ok(())
    }
}

/// Put a local project's images and categories on the server.
fn add_images(url: &str, project: &std::path::Path, lead: &str, now: i64) -> anyhow::Result<()> {
    let local = SqliteStore::open(project)?;
    let server = TeamServer::open(url)?;
    for c in local.categories()? {
        if !server.categories()?.iter().any(|k| k.name == c.name) {
            server.add_category(lead, c)?;
        }
    }
    let mut states = Vec::new();
    for image in local.images()? {
        states.push(
            ImageState::read(&local, &image.id)?
                .ok_or_else(|| anyhow!("image {} vanished while reading", image.id))?,
        );
    }
    let added = server.add_images(lead, &states, now)?;
    println!(
        "{added} image(s) added, {} already there",
        states.len() - added
    );
    Ok(())
}

/// One sync round of a linked file, settling one image's conflicts first when asked.
fn sync(
    file: &std::path::Path,
    resolve: Option<&str>,
    image: Option<String>,
    now: i64,
) -> anyhow::Result<()> {
    let mut client = TeamClient::open(file)?;
    let server = TeamServer::open(client.url())
        .with_context(|| format!("the team server of {}", file.display()))?;
    if let Some(how) = resolve {
        let how = match how {
            "keep-mine" => Resolution::KeepMine,
            "take-theirs" => Resolution::TakeTheirs,
            other => bail!("'{other}' is not keep-mine or take-theirs"),
        };
        let key = image.ok_or_else(|| anyhow!("--resolve needs --image"))?;
        let id = find_image(&server, &key)?;
        client.resolve(&server, &id, how, now)?;
    }
    let report = client.sync(&server, now)?;
    println!(
        "sent {}, conflicts {}, refused {}, fetched {} image(s), {} waiting",
        report.pushed, report.conflicts, report.refused, report.pulled_images, report.waiting
    );
    for c in client.conflicts()? {
        println!(
            "conflict on {}: {}",
            c.image.map(|i| i.short().to_owned()).unwrap_or_default(),
            c.message
        );
    }
    Ok(())
}

/// A throwaway PostgreSQL until Ctrl-C.
fn serve() -> anyhow::Result<()> {
    let cluster = LocalCluster::start_new(true)?;
    let url = cluster.create_database("team")?;
    println!("PostgreSQL is running, serving TLS; team project URL: {url}");
    println!(
        "to check the server's certificate, add ?sslmode=verify-full&sslrootcert={}",
        cluster.ca_file().display()
    );
    println!("next: thyme-studio team init {url} --lead YOUR_NAME");
    println!(
        "this URL holds the server owner's password: keep it to yourself; members get logins of their own from `team add-annotator`"
    );
    println!("Ctrl-C stops the server and removes its data.");
    wait_for_stop_signal();
    drop(cluster);
    println!("stopped");
    Ok(())
}

/// A new member's credentials, shown once.
fn print_invite(invite: &thyme_studio::team::server::Invite) {
    println!(
        "join string for {} (login {}; shown once, give it to them privately):",
        invite.member, invite.login
    );
    println!("  {}", invite.url);
    println!(
        "they run: thyme-studio team join '{}' {}.thyme --as {}",
        invite.url, invite.member, invite.member
    );
}

/// `team credentials`: the member's own connection string.
fn credentials(file: &std::path::Path, show: bool) -> anyhow::Result<()> {
    use thyme_studio::team::credentials;
    let client = TeamClient::open(file)?;
    let url = credentials::complete(client.url());
    if credentials::split_password(&url).1.is_none() {
        bail!(
            "no password is kept for {} (set {} or join again with the join string your lead gave you)",
            client.url(),
            credentials::PASSWORD_ENV
        );
    }
    println!("member: {}", client.member());
    println!(
        "{}",
        if show {
            url.clone()
        } else {
            credentials::masked(&url)
        }
    );
    println!(
        "kept in: {}",
        credentials::file_for(&thyme_studio::paths::AppDirs::for_user(), client.url()).display()
    );
    Ok(())
}

/// The soak test against a server of its own.
fn soak(options: SoakOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this program")?;
    let report = run_soak(&exe, &options)?;
    println!("{report}");
    if !report.passed() {
        bail!("the soak lost or silently overwrote edits");
    }
    Ok(())
}

/// The quality report, as CSV on stdout or in a file.
fn report(url: &str, csv: Option<PathBuf>) -> anyhow::Result<()> {
    let server = TeamServer::open(url)?;
    let report = TeamReport::compute(&ReportInputs::gather(&server)?);
    let text = report.to_csv();
    match csv {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ReviewArgs {
    url: String,
    image: String,
    action: String,
    #[arg(long)]
    annotator: String,
    #[arg(long = "as")]
    actor: String,
    /// For reject: one of the listed reasons.
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, default_value = "")]
    note: String,
}

impl ReviewArgs {
    fn run(self, now: i64) -> anyhow::Result<()> {
        let ReviewArgs {
            url,
            image,
            action,
            annotator,
            actor,
            reason,
            note,
        } = self;
        let server = TeamServer::open(&url)?;
        let id = find_image(&server, &image)?;
        let action = parse_action(&action, reason, note)?;
        let state = server.act(&actor, &id, &annotator, &action, now)?;
        println!("image {} of {annotator}: {}", id.short(), state.as_str());
        for line in server.review_diff(&id, &annotator)? {
            println!("  changed since submitted: {line}");
        }
        Ok(())
    }
}

/// Fill an empty team database with the worked example.
fn example(url: &str, dir: &std::path::Path, scale: u32) -> anyhow::Result<()> {
    let summary = thyme_studio::team::example::write_example(url, dir, scale)?;
    println!(
        "example team project filled from {}",
        summary.demo_project.display()
    );
    for (who, file) in summary.member_files {
        println!("  {who}: thyme-studio open {}", file.display());
    }
    Ok(())
}

/// The review queue of a linked file's member.
fn queue(file: &std::path::Path) -> anyhow::Result<()> {
    use thyme_studio::team::session::TeamSession;
    let mut session = TeamSession::open(file)?;
    let snap = session.round(None);
    if let Some(e) = &snap.error {
        bail!("{}: {e}", file.display());
    }
    if !snap.role.is_some_and(Role::reviews) {
        bail!(
            "{} is {}; the review queue is for reviewers and leads",
            session.member(),
            snap.role.map_or("not a member", Role::as_str)
        );
    }
    println!("{} item(s) waiting for review", snap.queue.len());
    for a in &snap.queue {
        let who = a.annotator.as_deref().unwrap_or("-");
        println!("{} {who}: {}", a.image.short(), a.state.as_str());
        if let Some(lines) = snap.diffs.get(&(a.image.clone(), who.to_owned())) {
            for l in lines {
                println!("  changed since submitted: {l}");
            }
        }
    }
    Ok(())
}
