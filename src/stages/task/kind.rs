//! The names every trainable task shares: which task ([`TaskKind`], the `[task] kind` of a
//! training TOML) and which part of its data ([`Split`], `zhishi eval --split`).
use serde::Serialize;

/// A trainable task, as `[task] kind` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Named-entity recognition (`stages::ner`).
    Ner,
    /// Relation extraction (`stages::relation`).
    Relation,
    /// Extractive question answering (`stages::qa`).
    Qa,
    /// Question answering over the KG (`stages::kbqa`).
    Kbqa,
    /// Masked-LM pretraining (`stages::pretrain`).
    Pretrain,
    /// Knowledge distillation of a trained NER model into a smaller one (`stages::distill`).
    Distill,
    /// Sentence and sentence-pair classification (`stages::classify`).
    Classify,
}

impl TaskKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [TaskKind; 7] = [
        TaskKind::Classify,
        TaskKind::Ner,
        TaskKind::Relation,
        TaskKind::Qa,
        TaskKind::Kbqa,
        TaskKind::Pretrain,
        TaskKind::Distill,
    ];

    /// The name in `[task] kind`.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Ner => "ner",
            TaskKind::Relation => "relation",
            TaskKind::Qa => "qa",
            TaskKind::Kbqa => "kbqa",
            TaskKind::Pretrain => "pretrain",
            TaskKind::Distill => "distill",
            TaskKind::Classify => "classify",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TaskKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TaskKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown task kind {s:?}; expected one of {}",
                    TaskKind::ALL.map(|k| format!("{:?}", k.name())).join(", ")
                )
            })
    }
}

/// A part of a task's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training data (minus a held-out dev part, where the task holds one out).
    Train,
    /// The development data (model selection).
    Dev,
    /// The test data.
    Test,
}

impl Split {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" => Ok(Split::Train),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(format!(
                "unknown split {other:?}; expected train, dev or test"
            )),
        }
    }
}
