//! The trainable-task registry: every task `zhishi train` and `zhishi eval` know (NER,
//! relation extraction, extractive QA, KBQA), each declared in its own module as a
//! [`Trainable`] and listed here with one line, with one error type
//! ([`crate::stages::task::TaskError`], which keeps each task's error as its source) and one
//! report shape ([`crate::stages::task::TaskReport`]) for all.
//!
//! NER, relation extraction and QA train through [`crate::train::Trainer`] (gradient steps,
//! checkpoints, resume, curves); KBQA fits its candidate scorer with its own short loop
//! over precomputed question/triple embeddings (the encoder stays fixed, so there is no
//! gradient step through it to checkpoint), and reports its epochs in `details`.
#[cfg(test)]
use super::task::{Split, TaskReport};
use super::task::{TaskKind, Trainable};
#[cfg(test)]
use std::path::PathBuf;

/// Every trainable task.
pub static TASKS: &[&Trainable] = &[
    &super::classify::TASK,
    &super::ner::TASK,
    &super::relation::TASK,
    &super::qa::TASK,
    &super::kbqa::TASK,
    &super::pretrain::TASK,
    &super::distill::TASK,
];

/// The task of `kind`.
pub fn find(kind: TaskKind) -> Option<&'static Trainable> {
    TASKS.iter().copied().find(|t| t.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_kind_is_registered_once() {
        for kind in TaskKind::ALL {
            assert_eq!(TASKS.iter().filter(|t| t.kind == kind).count(), 1, "{kind}");
        }
    }

    #[test]
    fn the_report_puts_metrics_and_training_at_the_top_level() {
        let mut r = TaskReport::new(
            TaskKind::Ner,
            Split::Dev,
            "f1",
            serde_json::json!({"f1": 0.5, "precision": 0.4}),
        );
        r.model_dir = Some(PathBuf::from("out/best"));
        let v = r.to_json();
        assert_eq!(v["task"], "ner");
        assert_eq!(v["split"], "dev");
        assert_eq!(
            (v["metric"].as_str(), v["score"].as_f64()),
            (Some("f1"), Some(0.5))
        );
        assert_eq!(v["precision"], 0.4);
        assert_eq!(v["model_dir"], "out/best");
        assert!(v.get("details").is_none());
    }
}
