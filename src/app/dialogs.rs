//! File dialogs behind a small trait, always called off the UI thread.
//!
//! rfd's portal dialogs can block (or hang on a broken desktop), so the app runs every dialog
//! on its own thread and reads the answer from a channel. Tests substitute a scripted
//! implementation.

use std::path::PathBuf;

/// What the app asks the person to pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogRequest {
    OpenProject,
    NewProject,
    ImportFolder,
    ImportImages,
    /// Where an export goes: a file, or a folder for formats that write one.
    ExportTo(crate::exchange::Format),
    /// A data file (COCO, JSONL) to read annotations from.
    ImportAnnotations,
    /// An agent trace or log to inspect.
    OpenTrace,
    /// A folder of an agent's logs to inspect (Mini-o3's save folder, Pixel Reasoner's dumps).
    OpenTraceFolder,
    /// A model folder (a Hugging Face download of Qwen2.5-VL / Thyme-RL).
    ModelFolder,
    /// The folder of Segment Anything's weights (candle's safetensors).
    SamWeights,
    /// An image file to run the agent on (not added to the project).
    RunImage,
    /// A system prompt file (a Thyme checkout's scripts/prompt.txt).
    SystemPromptFile,
}

/// Something that can show file dialogs; `None` when the person cancels.
pub trait Dialogs: Send + Sync {
    fn pick(&self, request: DialogRequest) -> Option<Vec<PathBuf>>;
}

/// Native dialogs through rfd.
pub struct NativeDialogs;

impl Dialogs for NativeDialogs {
    fn pick(&self, request: DialogRequest) -> Option<Vec<PathBuf>> {
        let dialog = rfd::FileDialog::new();
        match request {
            DialogRequest::OpenProject => dialog
                .set_title("Open project")
                .add_filter("thyme-studio project", &["thyme"])
                .pick_file()
                .map(|p| vec![p]),
            DialogRequest::NewProject => dialog
                .set_title("New project")
                .add_filter("thyme-studio project", &["thyme"])
                .set_file_name("project.thyme")
                .save_file()
                .map(|p| vec![p]),
            DialogRequest::ImportFolder => dialog
                .set_title("Import a folder of images")
                .pick_folder()
                .map(|p| vec![p]),
            DialogRequest::ImportImages => dialog
                .set_title("Import images")
                .add_filter("Images", &crate::imagery::format::EXTENSIONS)
                .pick_files(),
            DialogRequest::ExportTo(format) if format.writes_folder() => dialog
                .set_title(format!("Export ({}) into a folder", format.name()))
                .pick_folder()
                .map(|p| vec![p]),
            DialogRequest::ExportTo(format) => dialog
                .set_title(format!("Export ({})", format.name()))
                .set_file_name(format.default_file_name())
                .save_file()
                .map(|p| vec![p]),
            DialogRequest::OpenTrace => dialog
                .set_title("Open a trace (trace.json, a JSONL of traces, or an agent log)")
                .add_filter("traces and logs", &["json", "jsonl", "zip", "xlsx", "tsv", "csv"])
                .pick_file()
                .map(|p| vec![p]),
            DialogRequest::OpenTraceFolder => dialog
                .set_title("Open a folder of agent logs (a trace folder, Mini-o3's save folder, Pixel Reasoner's dumps)")
                .pick_folder()
                .map(|p| vec![p]),
            DialogRequest::RunImage => dialog
                .set_title("Run the agent on an image file")
                .add_filter("Images", &crate::imagery::format::EXTENSIONS)
                .pick_file()
                .map(|p| vec![p]),
            DialogRequest::SystemPromptFile => dialog
                .set_title("Use a Thyme checkout's prompt file (scripts/prompt.txt)")
                .add_filter("text", &["txt"])
                .pick_file()
                .map(|p| vec![p]),
            DialogRequest::ModelFolder => dialog
                .set_title("Choose a model folder (config.json, safetensors, tokenizer.json)")
                .pick_folder()
                .map(|p| vec![p]),
            DialogRequest::SamWeights => dialog
                .set_title(
                    "Choose the folder of SAM's weights (mobile_sam-tiny-vitt.safetensors or sam_vit_b_01ec64.safetensors)",
                )
                .pick_folder()
                .map(|p| vec![p]),
            DialogRequest::ImportAnnotations => dialog
                .set_title("Import annotations (COCO, thyme-studio JSONL, Thyme RL or SFT JSONL)")
                .add_filter("JSON or JSON lines", &["json", "jsonl"])
                .pick_file()
                .map(|p| vec![p]),
        }
    }
}
