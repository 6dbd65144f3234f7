//! Strict TOML loading shared by pipelines and training configs.
//!
//! [`load`] reads a TOML file, expands `${VAR}` from the environment in every string value,
//! applies spaCy-style `--set dotted.key=value` overrides, and deserialises into a schema type
//! (which should use `#[serde(deny_unknown_fields)]`). Every error names the file, the line and
//! the dotted key, and says what was expected. The returned [`ConfigSource`] keeps the text so
//! later checks (missing files, stage order) can point at the right line too, and resolves
//! relative paths against the TOML file's directory.
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml_edit::{DocumentMut, ImDocument, Item, TableLike, Value};

/// What can go wrong loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read")]
    Io {
        /// The TOML file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}:{line}: invalid TOML: {message}")]
    Syntax {
        /// The TOML file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// The file is not UTF-8 (names the line).
    #[error(transparent)]
    Text(#[from] crate::textfile::TextFileError),
    /// A key is unknown, missing, of the wrong type or has a bad value.
    #[error("{}: key `{key}`: {message}", location(path, *line))]
    Invalid {
        /// The TOML file.
        path: PathBuf,
        /// 1-based line, when the key is in the file.
        line: Option<usize>,
        /// Dotted key path, e.g. `stage[2].model`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A `--set` override is malformed.
    #[error("--set {arg}: {message}")]
    Override {
        /// The override as given.
        arg: String,
        /// What is wrong.
        message: String,
    },
    /// A key that a `--set` override gave its value (or a table holding it) is refused: the
    /// override is named instead of a line, since the value is in no line of the file.
    #[error("{}: key `{key}` (--set {arg}): {message}", path.display())]
    Overridden {
        /// The TOML file.
        path: PathBuf,
        /// The override as given.
        arg: String,
        /// Dotted key path of the refused value.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// `path:line`, or `path` alone when the key has no line in the file.
fn location(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// A loaded configuration's file, text (after overrides) and directory, for error reporting
/// and path resolution after deserialisation. An error about a key a `--set` override gave
/// names that override, never a line: the overridden value is in no line of the file.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    path: PathBuf,
    /// The text after overrides (what a trained model keeps).
    text: String,
    /// The file's own text, whose lines errors cite.
    original: String,
    /// The overrides applied, each as its key path and as given.
    overrides: Vec<(Vec<Segment>, String)>,
}

/// A deserialised configuration together with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The configuration.
    pub value: T,
    /// Its file and text.
    pub source: ConfigSource,
}

/// Reads `path`, expands `${VAR}`, applies `overrides` (`dotted.key=value`; the value is parsed
/// as TOML and taken as a string when it is not valid TOML) and deserialises into `T`.
pub fn load<T: DeserializeOwned>(
    path: &Path,
    overrides: &[String],
) -> Result<Loaded<T>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = crate::textfile::decode(path, bytes)?;
    from_str(path, &text, overrides)
}

/// Like [`load`] for TOML text that claims to come from `path` (used in tests and for
/// configurations embedded in checkpoints).
pub fn from_str<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    overrides: &[String],
) -> Result<Loaded<T>, ConfigError> {
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Syntax {
                path: path.to_path_buf(),
                line: e.span().map_or(1, |s| line_at(text, s.start)),
                message: first_line(e.message()),
            })?;
    // Overrides first: `--set encoder.model=DIR` replaces `${M3E_DIR}` before it is expanded,
    // so an unset variable that is overridden is no error.
    let mut applied = Vec::with_capacity(overrides.len());
    for arg in overrides {
        applied.push((apply_override(&mut doc, arg)?, arg.clone()));
    }
    let mut source = ConfigSource {
        path: path.to_path_buf(),
        text: text.to_string(),
        original: text.to_string(),
        overrides: applied,
    };
    expand_env(doc.as_item_mut(), &mut Vec::new(), &source)?;
    if !overrides.is_empty() {
        source.text = doc.to_string();
    }
    // Deserialise from the expanded document. Without overrides its lines are the file's
    // (expansion never changes the number of lines), so an error's span gives its line; with
    // them the document is rewritten, so the line is looked up by key in the file itself.
    let expanded = doc.to_string();
    let deserializer = toml::Deserializer::new(&expanded);
    let value = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let message = first_line(inner.message());
        if key == "." {
            return ConfigError::Invalid {
                path: path.to_path_buf(),
                line: inner.span().map(|s| line_at(&expanded, s.start)),
                key: "(top level)".into(),
                message,
            };
        }
        if overrides.is_empty() {
            if let Some(span) = inner.span() {
                return ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: Some(line_at(&expanded, span.start)),
                    key,
                    message,
                };
            }
        }
        source.error(&key, message)
    })?;
    Ok(Loaded { value, source })
}

impl ConfigSource {
    /// The TOML file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The TOML text after `--set` overrides (what to save next to a trained model).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The directory relative paths resolve against.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// `p` if absolute, else `p` relative to the TOML file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir().join(p)
        }
    }

    /// The 1-based line of dotted key `key` (`a.b`, `stage[1].model`), if it is in the file.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let doc = ImDocument::parse(self.original.as_str()).ok()?;
        let span = span_of(doc.as_item(), &parse_key_path(key)?)?;
        Some(line_at(&self.original, span.start))
    }

    /// The `--set` override (as given) that set `key` or a table holding it, the last one
    /// when several did.
    pub fn override_of(&self, key: &str) -> Option<&str> {
        let path = parse_key_path(key)?;
        self.overrides
            .iter()
            .rev()
            .find(|(set, _)| path.starts_with(set))
            .map(|(_, arg)| arg.as_str())
    }

    /// An error about `key` saying `message`: [`ConfigError::Overridden`] naming the `--set`
    /// that gave the key its value, else [`ConfigError::Invalid`] with the key's line.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        if let Some(arg) = self.override_of(key) {
            return ConfigError::Overridden {
                path: self.path.clone(),
                arg: arg.to_string(),
                key: key.to_string(),
                message,
            };
        }
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line_of(key),
            key: key.to_string(),
            message,
        }
    }

    /// Every existing file or directory the configuration names, with its dotted key: each
    /// string value (`${VAR}` expanded) resolved against the TOML's directory, for the plan
    /// of what a command reads ([`crate::files::Plan`]). Keys that name outputs
    /// (`output_dir`, `output`, `out`) are left out, and so are values that are not paths
    /// of anything on disk.
    pub fn referenced_paths(&self) -> Vec<(String, PathBuf)> {
        let Ok(mut doc) = self.text.parse::<DocumentMut>() else {
            return Vec::new();
        };
        // Unset variables stay as written (and then name nothing on disk).
        let _ = expand_env(doc.as_item_mut(), &mut Vec::new(), self);
        let mut out = Vec::new();
        collect_paths(doc.as_item(), &mut Vec::new(), &mut |key, value| {
            let last = key.rsplit('.').next().unwrap_or(key);
            if matches!(last, "output_dir" | "output" | "out") || value.is_empty() {
                return;
            }
            let path = self.resolve(Path::new(value));
            if path.exists() {
                out.push((key.to_string(), path));
            }
        });
        out
    }

    /// Resolves the model directory `p` names (the value of `key`): an
    /// `hf:ORG/NAME[@REVISION]` id to its snapshot in the Hugging Face cache (fetched when
    /// not cached, unless `HF_HUB_OFFLINE` is set: [`crate::model::hub`]), any other path as
    /// [`ConfigSource::existing_path`] does.
    pub fn model_dir(&self, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        match crate::model::hub::HubId::from_path(p) {
            None => self.existing_path(key, p),
            Some(id) => id
                .and_then(|id| crate::model::hub::open(&id))
                .map(|snapshot| snapshot.dir)
                .map_err(|e| self.error(key, with_causes(&e))),
        }
    }

    /// Resolves `p` (the value of `key`) and checks that it exists.
    pub fn existing_path(&self, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        let resolved = self.resolve(p);
        if resolved.exists() {
            Ok(resolved)
        } else {
            Err(self.error(
                key,
                format!(
                    "{} does not exist (relative paths resolve against {})",
                    resolved.display(),
                    self.dir().display()
                ),
            ))
        }
    }
}

/// `e`'s message and those of its causes that it does not already show, joined by `: `.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// One step of a dotted key path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2].c` (or `a.b.2.c`) into segments.
fn parse_key_path(key: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            match name.parse::<usize>() {
                Ok(i) if !out.is_empty() => out.push(Segment::Index(i)),
                _ => out.push(Segment::Key(name.to_string())),
            }
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let close = stripped.find(']')?;
            out.push(Segment::Index(stripped[..close].parse().ok()?));
            rest = &stripped[close + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The span of the key (or, for array elements, the element) at `path`.
fn span_of(root: &Item, path: &[Segment]) -> Option<Range<usize>> {
    let mut table: &dyn TableLike = root.as_table_like()?;
    let mut span = None;
    let mut i = 0;
    while i < path.len() {
        let Segment::Key(k) = &path[i] else {
            return span;
        };
        let (key, item) = table.get_key_value(k)?;
        span = key.span().or_else(|| item.span()).or(span);
        i += 1;
        match path.get(i) {
            None => return span,
            Some(Segment::Index(n)) => {
                i += 1;
                match item {
                    Item::ArrayOfTables(tables) => {
                        let t = tables.get(*n)?;
                        span = t.span().or(span);
                        table = t;
                    }
                    Item::Value(Value::Array(a)) => return a.get(*n)?.span().or(span),
                    _ => return span,
                }
            }
            Some(Segment::Key(_)) => table = item.as_table_like()?,
        }
    }
    span
}

/// Replaces `${VAR}` in every string value with the environment variable (`$$` is a literal `$`).
/// Calls `each(dotted key, string)` for every string value under `item`.
fn collect_paths(item: &Item, path: &mut Vec<String>, each: &mut dyn FnMut(&str, &str)) {
    let mut value = |v: &Value, path: &mut Vec<String>| match v {
        Value::String(s) => each(&path.join("."), s.value()),
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if let Value::String(s) = v {
                    each(&format!("{}[{i}]", path.join(".")), s.value());
                }
            }
        }
        Value::InlineTable(t) => {
            for (k, v) in t.iter() {
                if let Value::String(s) = v {
                    path.push(k.to_string());
                    each(&path.join("."), s.value());
                    path.pop();
                }
            }
        }
        _ => {}
    };
    match item {
        Item::Value(v) => value(v, path),
        Item::Table(t) => {
            for (k, v) in t.iter() {
                path.push(k.to_string());
                collect_paths(v, path, each);
                path.pop();
            }
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                for (k, v) in t.iter() {
                    path.push(k.to_string());
                    collect_paths(v, path, each);
                    path.pop();
                }
                path.pop();
                path.push(last);
            }
        }
        Item::None => {}
    }
}

fn expand_env(
    item: &mut Item,
    path: &mut Vec<String>,
    src: &ConfigSource,
) -> Result<(), ConfigError> {
    match item {
        Item::Value(v) => expand_value(v, path, src),
        Item::Table(t) => {
            for (k, v) in t.iter_mut() {
                path.push(k.get().to_string());
                expand_env(v, path, src)?;
                path.pop();
            }
            Ok(())
        }
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter_mut().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                for (k, v) in t.iter_mut() {
                    path.push(k.get().to_string());
                    expand_env(v, path, src)?;
                    path.pop();
                }
                path.pop();
                path.push(last);
            }
            Ok(())
        }
        Item::None => Ok(()),
    }
}

fn expand_value(
    v: &mut Value,
    path: &mut Vec<String>,
    src: &ConfigSource,
) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.value().contains('$') => {
            let key = path.join(".");
            let expanded = expand_str(s.value()).map_err(|var| {
                src.error(
                    &key,
                    format!("environment variable `{var}` is not set (referenced as ${{{var}}})"),
                )
            })?;
            let decor = s.decor().clone();
            *s = toml_edit::Formatted::new(expanded);
            *s.decor_mut() = decor;
            Ok(())
        }
        Value::Array(a) => {
            for (i, el) in a.iter_mut().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                expand_value(el, path, src)?;
                path.pop();
                path.push(last);
            }
            Ok(())
        }
        Value::InlineTable(t) => {
            for (k, el) in t.iter_mut() {
                path.push(k.get().to_string());
                expand_value(el, path, src)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Expands `${VAR}`, `${VAR:-default}` (the default when `VAR` is unset or empty, as in a
/// POSIX shell; the default itself is not expanded) and `$$`; returns the name of the first
/// unset variable without a default as the error.
fn expand_str(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                out.push('$');
                rest = after;
                continue;
            };
            let spec = &body[..close];
            let value = match spec.split_once(":-") {
                Some((name, default)) => match std::env::var(name) {
                    Ok(v) if !v.is_empty() => v,
                    _ => default.to_string(),
                },
                None => std::env::var(spec).map_err(|_| spec.to_string())?,
            };
            out.push_str(&value);
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies one `dotted.key=value` override, creating missing tables; returns the key's path.
fn apply_override(doc: &mut DocumentMut, arg: &str) -> Result<Vec<Segment>, ConfigError> {
    let bad = |message: String| ConfigError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected dotted.key=value".into()))?;
    let path = parse_key_path(key.trim())
        .filter(|p| matches!(p.first(), Some(Segment::Key(_))))
        .ok_or_else(|| bad("expected a dotted key such as encoder.model".into()))?;
    let value: Value = match raw.trim().parse::<Value>() {
        Ok(v) => v.decorated("", ""),
        Err(_) => Value::from(raw),
    };
    set_in(doc.as_table_mut(), &path, value).map_err(bad)?;
    Ok(path)
}

/// Sets `path` (which starts with a key) inside `table` to `value`.
fn set_in(table: &mut dyn TableLike, path: &[Segment], value: Value) -> Result<(), String> {
    let Some((Segment::Key(k), rest)) = path.split_first() else {
        return Err("expected a key".into());
    };
    match rest.first() {
        None => {
            table.insert(k, Item::Value(value));
            Ok(())
        }
        Some(Segment::Index(i)) => {
            let item = table
                .get_mut(k)
                .ok_or_else(|| format!("`{k}` is not in the file, so `{k}[{i}]` cannot be set"))?;
            match item {
                Item::ArrayOfTables(tables) => {
                    let len = tables.len();
                    let t = tables
                        .get_mut(*i)
                        .ok_or_else(|| format!("`{k}` has {len} entries, no [{i}]"))?;
                    set_in(t, &rest[1..], value)
                }
                Item::Value(Value::Array(a)) if rest.len() == 1 => {
                    let len = a.len();
                    if *i >= len {
                        return Err(format!("`{k}` has {len} entries, no [{i}]"));
                    }
                    a.replace(*i, value);
                    Ok(())
                }
                _ => Err(format!("`{k}` is not an array")),
            }
        }
        Some(Segment::Key(_)) => {
            if table.get(k).is_none() {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                table.insert(k, Item::Table(t));
            }
            let child = table
                .get_mut(k)
                .and_then(|item| item.as_table_like_mut())
                .ok_or_else(|| format!("`{k}` is not a table"))?;
            set_in(child, rest, value)
        }
    }
}

fn line_at(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

/// Deserializers for numbers that must lie in a range, for `#[serde(deserialize_with = ...)]`:
/// a NaN, an infinity or an out-of-range value is an error at its key and line, never a
/// setting that silently breaks training or linking.
pub mod range {
    use serde::de::{Deserialize, Deserializer, Error};

    fn check<'de, D: Deserializer<'de>, T: PartialOrd + std::fmt::Display>(
        value: T,
        ok: bool,
        expected: &str,
    ) -> Result<T, D::Error> {
        if ok {
            Ok(value)
        } else {
            Err(D::Error::custom(format!(
                "{value} is out of range; expected {expected}"
            )))
        }
    }

    /// What a count in `MIN..=MAX` accepts, for messages.
    fn count_range<const MIN: usize, const MAX: usize>() -> String {
        if MAX == usize::MAX {
            format!("{MIN} or more")
        } else {
            format!("{MIN} to {MAX}")
        }
    }

    /// A whole number in `MIN..=MAX`: a count, length or stride that makes no sense at 0 (or
    /// beyond a bound that sizes an allocation). Use as
    /// `deserialize_with = "crate::config::range::count::<1, 8192, _>"`.
    pub fn count<'de, const MIN: usize, const MAX: usize, D: Deserializer<'de>>(
        d: D,
    ) -> Result<usize, D::Error> {
        let v = usize::deserialize(d)?;
        check::<D, _>(v, (MIN..=MAX).contains(&v), &count_range::<MIN, MAX>())
    }

    /// [`count`] for an optional key.
    pub fn opt_count<'de, const MIN: usize, const MAX: usize, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<usize>, D::Error> {
        match Option::<usize>::deserialize(d)? {
            Some(v) => {
                check::<D, _>(v, (MIN..=MAX).contains(&v), &count_range::<MIN, MAX>()).map(Some)
            }
            None => Ok(None),
        }
    }

    /// A probability or fraction: 0 to 1.
    pub fn unit_f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        let v = f32::deserialize(d)?;
        check::<D, _>(v, (0.0..=1.0).contains(&v), "a number from 0 to 1")
    }

    /// [`unit_f32`] for an optional key.
    pub fn opt_unit_f32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        match Option::<f32>::deserialize(d)? {
            Some(v) => check::<D, _>(v, (0.0..=1.0).contains(&v), "a number from 0 to 1").map(Some),
            None => Ok(None),
        }
    }

    /// A fraction: 0 to 1.
    pub fn unit_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = f64::deserialize(d)?;
        check::<D, _>(v, (0.0..=1.0).contains(&v), "a number from 0 to 1")
    }

    /// A finite number greater than 0 (a learning rate).
    pub fn positive_f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        let v = f32::deserialize(d)?;
        check::<D, _>(
            v,
            v.is_finite() && v > 0.0,
            "a finite number greater than 0",
        )
    }

    /// A finite number greater than 0 (a learning rate).
    pub fn positive_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = f64::deserialize(d)?;
        check::<D, _>(
            v,
            v.is_finite() && v > 0.0,
            "a finite number greater than 0",
        )
    }

    /// A finite number, 0 or more (a decay, a clip norm, a scale).
    pub fn non_negative_f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        let v = f32::deserialize(d)?;
        check::<D, _>(v, v.is_finite() && v >= 0.0, "a finite number, 0 or more")
    }

    /// A finite number, 0 or more (a decay, a clip norm, a scale).
    pub fn non_negative_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let v = f64::deserialize(d)?;
        check::<D, _>(v, v.is_finite() && v >= 0.0, "a finite number, 0 or more")
    }
}

#[cfg(test)]
mod tests;
