pub mod dataset;
pub mod eval;
pub mod store;
pub mod transe;
