//! `thyme-studio assist`: assisted boxing headless. `snap` turns a rough box into the object's
//! tight box at native resolution (the weight-free snap).

use std::path::PathBuf;

use thyme_studio::assist::{snap, window};
use thyme_studio::geometry::ImageRect;
use thyme_studio::imagery::{PixelBudget, probe_bytes};

use super::Failure;
use super::output::print_json;

#[derive(clap::Subcommand)]
pub enum AssistCommand {
    /// Snap a rough box (X0,Y0,X1,Y1 in image pixels) to the object inside it.
    Snap {
        image: PathBuf,
        #[arg(long = "box", value_parser = parse_box)]
        rough: ImageRect,
        #[arg(long)]
        json: bool,
    },
    /// Click-to-box: the object at X,Y (image pixels). With --weights, Segment Anything on a
    /// window of SIDE original pixels around it (Shift+click's negatives with --not X,Y);
    /// without, the weight-free click.
    Box {
        image: PathBuf,
        #[arg(long)]
        x: f64,
        #[arg(long)]
        y: f64,
        /// A point that is not the object (repeatable).
        #[arg(long = "not", value_parser = parse_point)]
        not: Vec<(f64, f64)>,
        /// The folder with SAM's weights (mobile_sam-tiny-vitt.safetensors or
        /// sam_vit_b_01ec64.safetensors); without it the weight-free click.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Use ViT-B even when TinyViT is there.
        #[arg(long)]
        vit_b: bool,
        /// The window's side in original pixels.
        #[arg(long, default_value_t = 512)]
        side: u32,
        #[arg(long)]
        json: bool,
    },
    /// Ask the VLM on a chat server for boxes of TEXT ("red sign"), tile by tile at native
    /// resolution; the proposals in original pixels.
    Find {
        image: PathBuf,
        #[arg(long)]
        text: String,
        /// The chat server, e.g. http://127.0.0.1:8000/v1 (or THYME_STUDIO_BASE_URL).
        #[arg(long)]
        base_url: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// A tile's side in original pixels.
        #[arg(long, default_value_t = 1344)]
        tile: u32,
        /// The server's processor max_pixels (Qwen2.5-VL's default 12845056).
        #[arg(long, default_value_t = thyme_studio::imagery::model_eye::DEFAULT_MAX_PIXELS)]
        max_pixels: u64,
        #[arg(long)]
        json: bool,
    },
}

fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (x, y) = s.split_once(',').ok_or("two numbers: X,Y")?;
    match (x.trim().parse(), y.trim().parse()) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        _ => Err("two numbers: X,Y".into()),
    }
}

fn sam_box(
    image: &std::path::Path,
    click: (f64, f64),
    not: &[(f64, f64)],
    weights: Option<&std::path::Path>,
    vit_b: bool,
    side: u32,
    json: bool,
) -> Result<(), Failure> {
    let user = |e: thyme_studio::assist::AssistError| Failure::User(e.into());
    let mut assistant = thyme_studio::assist::assistant::Assistant::new();
    assistant.use_weights(weights, vit_b).map_err(user)?;
    let found = assistant.click(image, click, not, side).map_err(user)?;
    if json {
        return print_json(&found);
    }
    let r = found.rect;
    println!(
        "{:.0},{:.0},{:.0},{:.0}  ({})",
        r.x0, r.y0, r.x1, r.y1, found.how
    );
    Ok(())
}

fn parse_box(s: &str) -> Result<ImageRect, String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| "four numbers: X0,Y0,X1,Y1".to_owned())?;
    match v[..] {
        [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Ok(ImageRect::new(x0, y0, x1, y1)),
        [_, _, _, _] => Err("X1 must be over X0 and Y1 over Y0".into()),
        _ => Err("four numbers: X0,Y0,X1,Y1".into()),
    }
}

#[derive(serde::Serialize)]
struct SnapOut {
    image: PathBuf,
    rough: [f64; 4],
    snapped: [f64; 4],
    area_percent: f64,
    parts: usize,
    ms: f64,
}

impl AssistCommand {
    pub fn run(self) -> Result<(), Failure> {
        match self {
            AssistCommand::Snap { image, rough, json } => snap_box(image, rough, json),
            AssistCommand::Box {
                image,
                x,
                y,
                not,
                weights,
                vit_b,
                side,
                json,
            } => sam_box(&image, (x, y), &not, weights.as_deref(), vit_b, side, json),
            AssistCommand::Find {
                image,
                text,
                base_url,
                model,
                tile,
                max_pixels,
                json,
            } => {
                let settings = thyme_studio::assist::find::FindSettings {
                    tile,
                    max_pixels,
                    ..Default::default()
                };
                find(image, &text, base_url, model, settings, json)
            }
        }
    }
}

fn find(
    image: PathBuf,
    text: &str,
    base_url: Option<String>,
    model: Option<String>,
    settings: thyme_studio::assist::find::FindSettings,
    json: bool,
) -> Result<(), Failure> {
    let http = thyme_studio::agent::HttpSettings::resolve(base_url.as_deref(), model.as_deref())
        .ok_or_else(|| {
            Failure::User(anyhow::anyhow!(
                "give the chat server: --base-url URL (or THYME_STUDIO_BASE_URL)"
            ))
        })?;
    let mut policy = thyme_studio::agent::Http::new(http);
    let bytes = std::fs::read(&image)
        .map_err(|e| Failure::User(anyhow::anyhow!("{}: {e}", image.display())))?;
    let size = probe_bytes(&image, &bytes, PixelBudget::DEFAULT)
        .map_err(|e| Failure::User(e.into()))?
        .size;
    let scratch = tempfile::tempdir().map_err(|e| Failure::Internal(e.into()))?;
    let found = thyme_studio::assist::find::find(
        &mut policy,
        &image,
        &bytes,
        size,
        text,
        &settings,
        scratch.path(),
        &std::sync::atomic::AtomicBool::new(false),
        &mut |_, _| {},
    )
    .map_err(|e| Failure::User(e.into()))?;
    for p in &found.problems {
        eprintln!("{p}");
    }
    if json {
        return print_json(&found);
    }
    println!(
        "{} proposal(s) from {} tile(s), {:.1} s in the model",
        found.proposals.len(),
        found.tiles,
        found.model_ms / 1000.0
    );
    for p in &found.proposals {
        let r = p.rect;
        println!(
            "{:.0},{:.0},{:.0},{:.0}  {}",
            r.x0, r.y0, r.x1, r.y1, p.label
        );
    }
    Ok(())
}

fn snap_box(image: PathBuf, rough: ImageRect, json: bool) -> Result<(), Failure> {
    let user = |e: thyme_studio::assist::AssistError| Failure::User(e.into());
    let started = std::time::Instant::now();
    let bytes = std::fs::read(&image)
        .map_err(|e| Failure::User(anyhow::anyhow!("{}: {e}", image.display())))?;
    let size = probe_bytes(&image, &bytes, PixelBudget::DEFAULT)
        .map_err(|e| Failure::User(e.into()))?
        .size;
    let area = window::around(&rough, snap::WINDOW_MARGIN, size).map_err(user)?;
    let pixels = window::read(&image, &bytes, area).map_err(user)?;
    let s = snap::snap(&pixels, (area[0], area[1]), &rough).map_err(user)?;
    let r = s.rect;
    let out = SnapOut {
        image,
        rough: [rough.x0, rough.y0, rough.x1, rough.y1],
        snapped: [r.x0, r.y0, r.x1, r.y1],
        area_percent: r.area_ratio(size) * 100.0,
        parts: s.parts,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    if json {
        return print_json(&out);
    }
    println!(
        "{:.0},{:.0},{:.0},{:.0}  ({:.3} % of the image, {:.0} ms)",
        r.x0, r.y0, r.x1, r.y1, out.area_percent, out.ms
    );
    Ok(())
}
