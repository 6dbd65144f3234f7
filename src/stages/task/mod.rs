//! What the trainable task stages (NER, relation extraction) share: the `[task]`,
//! `[encoder]`, `[knowledge]` and `[train]` tables of their training TOML, the knowledge
//! injection those tables describe, and the encoder's initialisation from a pretrained
//! checkpoint with a seeded head. A stage adds its own `[data]`/`[head]` tables, features and
//! network on top.
pub mod config;
pub mod definition;
pub mod entities;
pub mod init;
pub mod kind;
pub mod knowledge;
pub mod model_dir;
pub mod resolve;
pub mod setup;
pub mod trainable;

pub use config::{EncoderTable, KnowledgeMode, KnowledgeTable, TaskTable, TrainTable};
pub use definition::{kind_of, register, resolve_config, resolve_task, ConfigFile, Task, Trained};
pub use entities::{entity_vectors, PretrainedAggregators, PretrainedRecord, TransERecord};
pub use init::{pretrained_varmap, trainable_params};
pub use kind::{Split, TaskKind};
pub use knowledge::{
    documents, mark_injected, pipeline_differences, recorded_reads, refuse_or_warn, Annotator,
    Injection, KnowledgeError, KnowledgeRecord, MismatchPolicy,
};
pub use model_dir::{map_weights, read_trained, ModelDir, OpenError};
pub use resolve::{resolve, resolve_for, DataPaths, Purpose, Resolved, TaskConfig};
pub use setup::{fill_optional, TrainingKnowledge, TrainingSetupError, TrainingVars};
pub use trainable::{CheckFn, EvaluateFn, TaskError, TaskReport, TrainFn, Trainable};
