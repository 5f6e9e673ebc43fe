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
        let AssistCommand::Snap { image, rough, json } = self;
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
}
