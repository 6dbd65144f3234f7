//! Models by name: `hf:ORG/NAME[@REVISION]` wherever a model directory is accepted, resolved
//! to a snapshot directory of the Hugging Face cache (the layout `huggingface_hub` and the
//! `hf-hub` crate share), so one downloaded model serves Python and zhishi alike.
//!
//! - The cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`
//!   ([`cache_dir`]); a model lives in `models--ORG--NAME/`, where `refs/REVISION` (default
//!   `main`) holds the commit whose files are in `snapshots/COMMIT/`.
//! - Offline first: [`resolve`] reads the cache and touches the network only for a model
//!   that is not there (or lacks a file it needs, [`NEEDED`]); with `HF_HUB_OFFLINE=1` it
//!   never does, and a model missing from the cache is an error that says how to get it.
//! - [`download`] (`zhishi download ORG/NAME`) fetches the files a model needs from
//!   `$HF_ENDPOINT` (default `https://huggingface.co`) with hf-hub's blocking client and its
//!   progress bars (feature `download`, on by default).
//!
//! A path that does not start with `hf:` is a directory, returned as given.
use std::path::{Path, PathBuf};

use super::load::WEIGHT_FILES;

/// What a model id starts with.
pub const PREFIX: &str = "hf:";

/// The revision of an id that names none.
pub const DEFAULT_REVISION: &str = "main";

/// The files a model directory needs, each group satisfied by any one of its files: the
/// config and a tokenizer (what [`super::load::read_config`] and
/// [`super::BertTokenizer::from_dir`] read), and weights ([`is_weights`]: an encoder's
/// [`WEIGHT_FILES`], or a trained stage's own file such as `params.safetensors`).
pub const NEEDED: [&[&str]; 2] = [&["config.json"], &["tokenizer.json", "vocab.txt"]];

/// Extensions of the files fetched from a model's repository (its top level): settings and
/// vocabularies (`json`, `txt`, `toml`) and weights zhishi reads (`safetensors`, `bin`).
/// Weights of other frameworks (`tf_model.h5`, `flax_model.msgpack`, ONNX, ...) are left,
/// and of [`WEIGHT_FILES`] only the first the repository has.
pub const FETCHED_EXTENSIONS: [&str; 5] = ["json", "txt", "toml", "safetensors", "bin"];

/// The one sub-directory of a model directory whose files count as the model's: a trained
/// stage that keeps its encoder apart from its own files (KBQA: `encoder/config.json`, ...)
/// has its encoder's files there.
pub const ENCODER_SUBDIR: &str = "encoder";

/// Whether `file` (a path in a model repository, `/`-separated) is at the top level or in
/// [`ENCODER_SUBDIR`].
fn in_model_dir(file: &str) -> bool {
    match file.split_once('/') {
        None => true,
        Some((dir, rest)) => dir == ENCODER_SUBDIR && !rest.contains('/'),
    }
}

/// `file` without the [`ENCODER_SUBDIR`] prefix: the name the [`NEEDED`] groups use.
fn model_file_name(file: &str) -> &str {
    file.strip_prefix(ENCODER_SUBDIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(file)
}

/// Whether `file` (a name in a model directory) holds weights zhishi can read.
pub fn is_weights(file: &str) -> bool {
    file.ends_with(".safetensors") || file.ends_with(".bin")
}

/// The files of a repository listing worth fetching (see [`FETCHED_EXTENSIONS`]), or what
/// they lack of a model directory (a group of [`NEEDED`], or weights).
pub fn wanted<'a>(listing: &[&'a str]) -> Result<Vec<&'a str>, String> {
    let skipped_weights: Vec<&str> = match WEIGHT_FILES.iter().find(|w| listing.contains(w)) {
        Some(first) => WEIGHT_FILES
            .iter()
            .copied()
            .filter(|w| w != first)
            .collect(),
        None => Vec::new(),
    };
    let files: Vec<&str> = listing
        .iter()
        .copied()
        .filter(|f| in_model_dir(f) && !skipped_weights.contains(f))
        .filter(|f| {
            f.rsplit_once('.')
                .is_some_and(|(_, ext)| FETCHED_EXTENSIONS.contains(&ext))
        })
        .collect();
    missing(&files).map_or(Ok(files), Err)
}

/// What `files` lacks: the first group of [`NEEDED`] it has no file of, or weights.
fn missing<S: AsRef<str>>(files: &[S]) -> Option<String> {
    let has = |f: &str| files.iter().any(|g| model_file_name(g.as_ref()) == f);
    for group in NEEDED {
        if !group.iter().any(|f| has(f)) {
            return Some(group.join(" or "));
        }
    }
    if !files.iter().any(|f| is_weights(f.as_ref())) {
        return Some(format!(
            "weights ({} or *.safetensors)",
            WEIGHT_FILES.join(" or ")
        ));
    }
    None
}

/// What can go wrong naming, finding or fetching a model by id.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The id is not `hf:ORG/NAME[@REVISION]`.
    #[error("bad model id {spec:?}: {message} (expected hf:ORG/NAME or hf:ORG/NAME@REVISION)")]
    Id {
        /// The id as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// No cache directory can be named.
    #[error("no Hugging Face cache directory: set HF_HUB_CACHE (or HF_HOME, or HOME)")]
    NoCache,
    /// The model is not in the cache and is not fetched (offline, or a build without
    /// downloads).
    #[error(
        "{id} is not in the Hugging Face cache {}{why}: fetch it with `zhishi download {}`, \
         or set HF_HUB_CACHE to a cache that holds it",
        cache.display(),
        id.download_args()
    )]
    NotCached {
        /// The model.
        id: HubId,
        /// The cache looked in.
        cache: PathBuf,
        /// Why it was not fetched (starts with a space, or empty).
        why: String,
    },
    /// The model's repository has no file of a group the model needs.
    #[error("{id} (commit {commit}) has no {what}: it is not a BERT model zhishi can load")]
    NotAModel {
        /// The model.
        id: HubId,
        /// The commit looked at.
        commit: String,
        /// The files looked for.
        what: String,
    },
    /// Fetching failed (network, HTTP status, cache write); the cause is the source.
    #[cfg(feature = "download")]
    #[error(
        "cannot fetch {id} from {endpoint}: check the network (or HF_ENDPOINT), or lay the \
         model out in the Hugging Face cache {}",
        cache.display()
    )]
    Download {
        /// The model.
        id: HubId,
        /// The hub asked.
        endpoint: String,
        /// The cache written to.
        cache: PathBuf,
        /// hf-hub's error.
        source: Box<hf_hub::api::sync::ApiError>,
    },
}

/// A model id: `ORG/NAME` on the hub, at a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    /// `ORG/NAME`.
    pub repo: String,
    /// The revision as given (`None`: [`DEFAULT_REVISION`]).
    pub revision: Option<String>,
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", self.repo)?;
        match &self.revision {
            Some(r) => write!(f, "@{r}"),
            None => Ok(()),
        }
    }
}

impl HubId {
    /// Parses `hf:ORG/NAME[@REVISION]`, or the same without `hf:` (as `zhishi download`
    /// takes it). `revision`, when given, overrides the id's own.
    pub fn parse(spec: &str) -> Result<Self, HubError> {
        let bad = |message: &str| HubError::Id {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        let body = spec.strip_prefix(PREFIX).unwrap_or(spec);
        let (repo, revision) = match body.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (body, None),
        };
        let mut parts = repo.split('/');
        let (Some(org), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("the repository must be ORG/NAME"));
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name_ok(org) || !name_ok(name) {
            return Err(bad(
                "ORG and NAME are letters, digits, '-', '_' and '.' (not first)",
            ));
        }
        if let Some(rev) = revision {
            let rev_ok = !rev.is_empty()
                && !rev
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..")
                && rev
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
            if !rev_ok {
                return Err(bad("REVISION is a branch, tag or commit"));
            }
        }
        Ok(Self {
            repo: repo.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    /// The id named by a model path, when it starts with `hf:` (`None`: a directory).
    pub fn from_path(path: &Path) -> Option<Result<Self, HubError>> {
        let text = path.to_str()?;
        text.starts_with(PREFIX).then(|| Self::parse(text))
    }

    /// The revision, [`DEFAULT_REVISION`] when none is given.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }

    /// The model's folder in the cache: `models--ORG--NAME`.
    pub fn folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// The arguments of `zhishi download` that fetch this model.
    pub fn download_args(&self) -> String {
        match &self.revision {
            Some(r) => format!("{} --revision {r}", self.repo),
            None => self.repo.clone(),
        }
    }
}

/// A model's files in the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// The id, `hf:ORG/NAME` (with `@REVISION` when one was given).
    pub model: String,
    /// The revision resolved.
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    /// The snapshot directory: a model directory like any other.
    pub dir: PathBuf,
    /// The files it holds.
    pub files: Vec<String>,
}

/// The Hugging Face cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn cache_dir() -> Result<PathBuf, HubError> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("HF_HUB_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(home) = set("HF_HOME") {
        return Ok(PathBuf::from(home).join("hub"));
    }
    set("HOME")
        .or_else(|| set("USERPROFILE"))
        .map(|home| PathBuf::from(home).join(".cache/huggingface/hub"))
        .ok_or(HubError::NoCache)
}

/// Whether `HF_HUB_OFFLINE` forbids the network (`1`, `true`, `yes` or `on`, any case).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The model directory `path` names: the snapshot directory of an `hf:` id (fetched first
/// when it is not cached, unless offline: see [`open`]), else `path` itself.
pub fn resolve(path: &Path) -> Result<PathBuf, HubError> {
    match HubId::from_path(path) {
        None => Ok(path.to_path_buf()),
        Some(id) => Ok(open(&id?)?.dir),
    }
}

/// The snapshot of `id` in the cache ([`cache_dir`]); when it is not there, or lacks a file
/// it needs, fetched ([`download`]) unless `HF_HUB_OFFLINE` is set or the build has no
/// downloads, in which case the error says how to get it.
pub fn open(id: &HubId) -> Result<Snapshot, HubError> {
    let cache = cache_dir()?;
    if let Some(snapshot) = cached(id, &cache) {
        return Ok(snapshot);
    }
    let not_cached = |why: &str| HubError::NotCached {
        id: id.clone(),
        cache: cache.clone(),
        why: why.to_string(),
    };
    if offline() {
        return Err(not_cached(" (HF_HUB_OFFLINE is set)"));
    }
    #[cfg(feature = "download")]
    {
        download(id, &cache, true)
    }
    #[cfg(not(feature = "download"))]
    {
        Err(not_cached(
            " (this build cannot download: feature `download`)",
        ))
    }
}

/// The snapshot of `id` in `cache` if it is there with every group of [`NEEDED`] and weights;
/// reads the cache only. A revision that is a commit needs no ref: its snapshot is looked up directly.
pub fn cached(id: &HubId, cache: &Path) -> Option<Snapshot> {
    let repo = cache.join(id.folder());
    let commit = match std::fs::read_to_string(repo.join("refs").join(id.revision())) {
        Ok(text) => text.trim().to_string(),
        Err(_) if is_commit(id.revision()) => id.revision().to_string(),
        Err(_) => return None,
    };
    if !is_commit(&commit) {
        return None;
    }
    let dir = repo.join("snapshots").join(&commit);
    let files = present(&dir)?;
    Some(Snapshot {
        model: id.to_string(),
        revision: id.revision().to_string(),
        commit,
        dir,
        files,
    })
}

/// The files of `dir` (sorted; a link whose blob is gone is no file), or `None` when it lacks
/// a group of [`NEEDED`] or weights.
fn present(dir: &Path) -> Option<Vec<String>> {
    let files_in = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect()
    };
    if !dir.is_dir() {
        return None;
    }
    let mut files = files_in(dir);
    files.extend(
        files_in(&dir.join(ENCODER_SUBDIR))
            .into_iter()
            .map(|f| format!("{ENCODER_SUBDIR}/{f}")),
    );
    files.sort();
    missing(&files).is_none().then_some(files)
}

/// Whether `s` is a full commit hash (40 lower-case hex digits).
fn is_commit(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The id of the snapshot directory `dir` (`.../models--ORG--NAME/snapshots/COMMIT`), pinned
/// to its commit (`hf:ORG/NAME@COMMIT`): what a model trained from it records. `None` for any
/// other directory.
pub fn snapshot_id(dir: &Path) -> Option<HubId> {
    let commit = dir.file_name()?.to_str()?;
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" || !is_commit(commit) {
        return None;
    }
    let folder = snapshots.parent()?.file_name()?.to_str()?;
    let (org, name) = folder.strip_prefix("models--")?.split_once("--")?;
    HubId::parse(&format!("{org}/{name}@{commit}")).ok()
}

/// The hub zhishi fetches from: `$HF_ENDPOINT`, else `https://huggingface.co`.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .map_or_else(
            || "https://huggingface.co".to_string(),
            |e| e.trim().trim_end_matches('/').to_string(),
        )
}

/// Fetches the files of `id` at its revision into `cache` ([`wanted`]), skipping those
/// already there, and returns the snapshot. Asks the hub which files the revision has
/// (`/api/models/ORG/NAME/revision/REV`), then each file from `/ORG/NAME/resolve/REV/FILE`
/// as hf-hub does (blobs, snapshot symlinks, `refs/REV`); `progress` draws a bar per file
/// on a terminal. With `HF_HUB_OFFLINE` set, only a cached model is returned.
#[cfg(feature = "download")]
pub fn download(id: &HubId, cache: &Path, progress: bool) -> Result<Snapshot, HubError> {
    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Cache, Repo, RepoType};

    if offline() {
        return cached(id, cache).ok_or_else(|| HubError::NotCached {
            id: id.clone(),
            cache: cache.to_path_buf(),
            why: " (HF_HUB_OFFLINE is set)".into(),
        });
    }
    let endpoint = endpoint();
    let failed = |source: hf_hub::api::sync::ApiError| HubError::Download {
        id: id.clone(),
        endpoint: endpoint.clone(),
        cache: cache.to_path_buf(),
        source: Box::new(source),
    };
    let hub_cache = Cache::new(cache.to_path_buf());
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| hub_cache.token());
    let api = ApiBuilder::from_cache(hub_cache)
        .with_endpoint(endpoint.clone())
        .with_token(token)
        .with_progress(progress)
        .with_user_agent("zhishi", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(failed)?;
    let repo = api.repo(Repo::with_revision(
        id.repo.clone(),
        RepoType::Model,
        id.revision().to_string(),
    ));
    let info = repo.info().map_err(failed)?;
    let listed: Vec<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
    let wanted = wanted(&listed).map_err(|what| HubError::NotAModel {
        id: id.clone(),
        commit: info.sha.clone(),
        what,
    })?;
    let snapshot = cache.join(id.folder()).join("snapshots").join(&info.sha);
    for file in &wanted {
        if !snapshot.join(file).is_file() {
            repo.download(file).map_err(failed)?;
        }
    }
    // hf-hub writes the ref when it fetches a file; with every file cached it fetched none.
    if std::fs::read_to_string(cache.join(id.folder()).join("refs").join(id.revision()))
        .map(|c| c.trim() != info.sha)
        .unwrap_or(true)
    {
        Cache::new(cache.to_path_buf())
            .repo(Repo::with_revision(
                id.repo.clone(),
                RepoType::Model,
                id.revision().to_string(),
            ))
            .create_ref(&info.sha)
            .map_err(|e| failed(e.into()))?;
    }
    cached(id, cache).ok_or_else(|| HubError::NotAModel {
        id: id.clone(),
        commit: info.sha.clone(),
        what: "complete snapshot after the download".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_with_and_without_prefix_and_revision() {
        let id = HubId::parse("hf:hfl/rbt3").unwrap();
        assert_eq!(id.repo, "hfl/rbt3");
        assert_eq!(id.revision(), "main");
        assert_eq!(id.to_string(), "hf:hfl/rbt3");
        assert_eq!(id.folder(), "models--hfl--rbt3");
        let id = HubId::parse("google-bert/bert-base-chinese@v1.0").unwrap();
        assert_eq!(id.revision(), "v1.0");
        assert_eq!(id.to_string(), "hf:google-bert/bert-base-chinese@v1.0");
        assert_eq!(
            id.download_args(),
            "google-bert/bert-base-chinese --revision v1.0"
        );
        for bad in [
            "hf:rbt3",
            "hf:a/b/c",
            "hf:/x",
            "hf:a/..",
            "hf:a/b@",
            "hf:a/b@../x",
        ] {
            assert!(HubId::parse(bad).is_err(), "{bad}");
        }
        assert!(HubId::from_path(Path::new("models/m3e")).is_none());
        assert!(HubId::from_path(Path::new("hf:a/b")).is_some());
    }

    #[test]
    fn a_listing_yields_settings_vocabularies_and_one_set_of_weights() {
        let listing = [
            ".gitattributes",
            "README.md",
            "config.json",
            "flax_model.msgpack",
            "model.safetensors",
            "pytorch_model.bin",
            "tf_model.h5",
            "tokenizer.json",
            "vocab.txt",
            "coreml/model.mlmodel",
        ];
        assert_eq!(
            wanted(&listing).unwrap(),
            [
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "vocab.txt"
            ]
        );
        let trained = [
            "config.json",
            "vocab.txt",
            "ner.json",
            "params.safetensors",
            "train.toml",
        ];
        assert_eq!(wanted(&trained).unwrap(), trained);
        assert_eq!(
            wanted(&["config.json", "model.safetensors"]).unwrap_err(),
            "tokenizer.json or vocab.txt"
        );
        // A trained KBQA model keeps its encoder in `encoder/`: fetched, and it completes the
        // model; other sub-directories are not.
        let kbqa = [
            "kbqa.json",
            "scorer.safetensors",
            "encoder/config.json",
            "encoder/vocab.txt",
            "encoder/model.safetensors",
            "other/config.json",
            "encoder/deeper/vocab.txt",
        ];
        assert_eq!(wanted(&kbqa).unwrap(), &kbqa[..5]);
    }

    #[test]
    fn a_snapshot_directory_names_its_pinned_id() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let dir = PathBuf::from(format!("/c/models--hfl--rbt3/snapshots/{commit}"));
        let id = snapshot_id(&dir).unwrap();
        assert_eq!(id.to_string(), format!("hf:hfl/rbt3@{commit}"));
        assert!(snapshot_id(Path::new("/c/models/m3e")).is_none());
    }

    #[test]
    fn a_ref_resolves_to_its_snapshot_only_when_every_needed_file_is_there() {
        let cache = tempfile::tempdir().unwrap();
        let id = HubId::parse("hf:org/tiny").unwrap();
        let commit = "a".repeat(40);
        let repo = cache.path().join("models--org--tiny");
        let snap = repo.join("snapshots").join(&commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        std::fs::write(snap.join("vocab.txt"), "[PAD]").unwrap();
        assert!(cached(&id, cache.path()).is_none(), "no weights yet");
        std::fs::write(snap.join("pytorch_model.bin"), "").unwrap();
        let s = cached(&id, cache.path()).unwrap();
        assert_eq!(s.dir, snap);
        assert_eq!(s.files, ["config.json", "pytorch_model.bin", "vocab.txt"]);
        let pinned = HubId::parse(&format!("hf:org/tiny@{commit}")).unwrap();
        assert_eq!(cached(&pinned, cache.path()).unwrap().dir, snap);
        let other = HubId::parse("hf:org/tiny@dev").unwrap();
        assert!(cached(&other, cache.path()).is_none());

        // A model whose encoder files are in `encoder/` (KBQA) is complete with them there.
        let id = HubId::parse("hf:org/kbqa").unwrap();
        let repo = cache.path().join("models--org--kbqa");
        let snap = repo.join("snapshots").join(&commit);
        std::fs::create_dir_all(snap.join("encoder")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), &commit).unwrap();
        std::fs::write(snap.join("kbqa.json"), "{}").unwrap();
        std::fs::write(snap.join("encoder/config.json"), "{}").unwrap();
        std::fs::write(snap.join("encoder/vocab.txt"), "[PAD]").unwrap();
        assert!(cached(&id, cache.path()).is_none(), "no weights yet");
        std::fs::write(snap.join("encoder/model.safetensors"), "").unwrap();
        let s = cached(&id, cache.path()).unwrap();
        assert_eq!(
            s.files,
            [
                "encoder/config.json",
                "encoder/model.safetensors",
                "encoder/vocab.txt",
                "kbqa.json"
            ]
        );
    }
}
