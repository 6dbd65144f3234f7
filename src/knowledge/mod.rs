//! Knowledge injection: turning a sentence and the knowledge selected for its words into
//! encoder inputs. [`kbert`] builds the K-BERT sentence tree input (soft positions and a
//! visible matrix); [`tree`] holds the tree itself, [`visible`] the compact visible matrix and
//! [`vocab`] the character-to-id lookup the flattening needs, [`ernie`] the ERNIE-THU entity
//! alignment and vectors, and [`input`] the padded encoder batches every task stage feeds the
//! model.
pub mod document;
pub mod draw;
pub mod ernie;
pub mod input;
pub mod kbert;
pub mod select;
pub mod tree;
pub mod visible;
pub mod vocab;

pub use document::{DocumentKnowledge, DocumentTree};
pub use draw::{tree_svg, DrawError, MAX_DRAWN_TOKENS};
pub use ernie::{EntityVectors, ErnieError};
pub use input::{InputBatch, InputSequence, Layout};
pub use kbert::{flatten, InjectionMode, KbertConfig, KbertError, KbertInput};
pub use select::tree_from_text;
pub use tree::{knowledge_string, SentenceTree, TreeWord};
pub use visible::VisibleMatrix;
pub use vocab::{CharVocab, TokenIds, VocabError};
