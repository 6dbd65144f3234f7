//! Task stages users train, evaluate and run: each adds its output to a [`crate::doc::Document`].
pub mod kbqa;
