//! The CLI's side of [`zhishi::files::Plan`]: what a command reads through a TOML file.
use std::path::Path;

use anyhow::Result;
use zhishi::files::Plan;

/// The configuration `config` (with `--set` overrides) and every existing path it names, as
/// reads of a plan.
pub fn config_reads(config: &Path, overrides: &[String]) -> Result<Plan> {
    let loaded = zhishi::config::load::<toml::Value>(config, overrides)?;
    let mut plan = Plan::new();
    plan.read(format!("the configuration {}", config.display()), config);
    for (key, path) in loaded.source.referenced_paths() {
        plan.read(key, path);
    }
    Ok(plan)
}
