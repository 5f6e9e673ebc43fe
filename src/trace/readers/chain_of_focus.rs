//! Chain-of-Focus: its V* evaluation (`eval/vstar/vllm_inference.py`, `run_inference_loop`)
//! logs one line per item with DeepEyes' keys (`image`, `question`, `answer`, `pred_ans`,
//! `pred_output`, `status`), every image in the conversation written as the literal
//! placeholder `data:image/jpeg;base64,base64_image`. The difference that matters is the
//! frame of its zoom boxes: `bbox_2d` is in the pixels of the image the model saw (the
//! original resized by `smart_resize`), and the script enlarges each box 1.5x about its centre
//! before cropping. The conversation is read as DeepEyes' is; the boxes are placed on the
//! original by [`crate::trace::provenance::fill`], which knows the original's size. The
//! prompt invites several `<tool_call>`s per turn, but the script runs the first
//! (`find_absolute_bboxes` uses `re.search`): a step whose turn held more says so in a fix.

use super::*;

pub(super) fn chain_of_focus(v: &Value, base: &Path) -> Result<Trace, String> {
    if v.get("pred_output").is_some_and(|p| p.as_str() == Some("")) {
        // The script's own failure record: no conversation, the error in `status`.
        return Err(format!(
            "the evaluation failed on this item ({})",
            str_field(v, &["status"]).unwrap_or("no status")
        ));
    }
    let mut t = super::deepeyes::deepeyes(v, base)?;
    let mut calls = 0;
    for step in &mut t.steps {
        if let Step::Generate { text, .. } = step {
            calls = text.matches("<tool_call>").count();
        }
        if let Step::Execute { outputs, fixes, .. } = step {
            if calls > 1 {
                fixes.push(Fix {
                    kind: "first_call_only".into(),
                    detail: format!(
                        "the evaluation ran the first of the turn's {calls} tool calls (re.search); the other {} made no image",
                        calls - 1
                    ),
                });
            }
            for o in outputs {
                // In the resized frame, not the original's: fill places it.
                o.source_rect = None;
                o.provenance = None;
            }
        }
    }
    Ok(t)
}
