//! The built-in demo project: procedurally drawn high-resolution scenes with small objects whose
//! boxes and answers are known, stored as a ready-made project.
//!
//! Owns scene generation (deterministic from a seed, so the same demo everywhere) and writing
//! the images and the `.thyme` file. The scenes double as test data for the agent.

pub mod font;
pub mod paint;
pub mod scene;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use thiserror::Error;

use crate::dataset::{ImageId, ImageRecord, Question, Region};
use crate::geometry::ImageSize;
use crate::store::{Command, SqliteStore, Store, StoreError, now_ms};
pub use scene::{SCENES, Scene, SceneSpec};

/// File name of the demo project inside its folder.
pub const PROJECT_FILE: &str = "demo.thyme";
/// The actor the demo's edits are journaled under.
pub const DEMO_ACTOR: &str = "demo";

/// Why the demo could not be written.
#[derive(Debug, Error)]
pub enum DemoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot encode the image: {source}")]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Write the demo project into `dir` (images in `dir/images`, the project in
/// `dir/demo.thyme`); returns the project's path. `scale_div` divides every size (1 = full).
/// Fails if a project already exists there.
pub fn write_demo(
    dir: &Path,
    scale_div: u32,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, DemoError> {
    let project = dir.join(PROJECT_FILE);
    if project.exists() {
        return Err(StoreError::AlreadyExists { path: project }.into());
    }
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir).map_err(|source| DemoError::Io {
        path: images_dir.clone(),
        source,
    })?;
    let written: Vec<(Scene, PathBuf)> = SCENES
        .par_iter()
        .map(|spec| {
            progress(&format!("drawing {}", spec.name));
            let scene = scene::render(spec, scale_div);
            let path = images_dir.join(format!(
                "{}-{}x{}.jpg",
                spec.name,
                scene.image.width(),
                scene.image.height()
            ));
            progress(&format!("saving {}", path.display()));
            save_jpeg(&scene, &path)?;
            Ok((scene, path))
        })
        .collect::<Result<_, DemoError>>()?;

    // Write the project under a temporary name and rename it into place, so a half-written
    // demo is never mistaken for a finished one.
    let partial = dir.join(format!("{PROJECT_FILE}.partial"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    {
        let mut store = SqliteStore::create(&partial)?;
        for (scene, path) in &written {
            store.apply(DEMO_ACTOR, scene_command(scene, path)?)?;
        }
    }
    std::fs::rename(&partial, &project).map_err(|source| DemoError::Io {
        path: project.clone(),
        source,
    })?;
    progress("done");
    Ok(project)
}

fn save_jpeg(scene: &Scene, path: &Path) -> Result<(), DemoError> {
    let file = std::fs::File::create(path).map_err(|source| DemoError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut writer = std::io::BufWriter::new(file);
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, 90);
    scene
        .image
        .write_with_encoder(encoder)
        .map_err(|source| DemoError::Encode {
            path: path.to_owned(),
            source,
        })
}

/// The edit that adds one scene's image with its boxes and questions.
fn scene_command(scene: &Scene, path: &Path) -> Result<Command, DemoError> {
    let id = ImageId::of_file(path).map_err(|source| DemoError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let image = ImageRecord {
        id: id.clone(),
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
        size: ImageSize::new(scene.image.width(), scene.image.height()),
        bytes,
        added_at_ms: now_ms(),
        status: Default::default(),
        review: None,
    };
    let regions: Vec<Region> = scene
        .objects
        .iter()
        .map(|o| Region::new(id.clone(), o.rect, o.label.clone()))
        .collect();
    let questions = scene
        .questions
        .iter()
        .map(|q| {
            Question::new(
                id.clone(),
                q.objects.iter().map(|i| regions[*i].id).collect(),
                q.text.clone(),
                q.answer.clone(),
                q.category,
            )
        })
        .collect();
    Ok(Command::AddImage {
        image,
        regions,
        questions,
    })
}
