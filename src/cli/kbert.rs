//! `zhishi kbert`: reads JSON lines holding a sentence and its knowledge tree and writes the
//! flattened K-BERT inputs (tokens, ids, soft positions, knowledge mask, visible matrix).
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

use zhishi::kg::Store;
use zhishi::knowledge::{
    flatten, knowledge_string, tree_from_text, CharVocab, InjectionMode, KbertConfig, SentenceTree,
    TreeWord,
};
use zhishi::text::{LinkOptions, Linker};

/// Arguments of `zhishi kbert`.
#[derive(Args, Debug)]
pub struct KbertArgs {
    /// Knowledge-graph store; text-only input (`{"text": ...}`) is segmented and linked
    /// against it and each linked mention gets its most relevant facts.
    #[arg(long, value_name = "DIR")]
    db: Option<PathBuf>,
    /// Length of every output sequence (padded or cut to it).
    #[arg(long, value_name = "L", value_parser = super::bounds::count_in::<2, 8192>)]
    max_length: usize,
    /// At most this many knowledge strings after one word.
    #[arg(long, value_name = "K", default_value_t = KbertConfig::DEFAULT_MAX_ENTITIES, value_parser = super::bounds::count_in::<0, 64>)]
    max_entities: usize,
    /// Inject predicate + object instead of the object alone (for `[predicate, object]` pairs).
    #[arg(long)]
    predicate: bool,
    /// Reproduce the original K-BERT code bit for bit instead of the improved mode.
    #[arg(long)]
    compat: bool,
    /// BERT `vocab.txt` (ids = line numbers, unknown characters -> `[UNK]`; outside --compat
    /// an upper-case letter falls back to its lower case first), or a model directory holding
    /// one. Required: ids are meaningless without the model's vocabulary.
    #[arg(long, value_name = "FILE")]
    vocab: PathBuf,
    /// Also draw each line's tree and visible matrix as `DIR/N.svg` (N = input line number),
    /// over its first 160 tokens (the HTTP tree's cap). Each file is written to a temporary
    /// file in DIR and renamed into place, so a symlink at `N.svg` is replaced, never
    /// written through.
    #[arg(long, value_name = "DIR")]
    svg: Option<PathBuf>,
}

/// One input line: the sentence and, optionally, its tree.
#[derive(Deserialize)]
struct InputLine {
    text: String,
    tree: Option<Vec<InputWord>>,
}

/// One tree word: the word and its knowledge, best first.
#[derive(Deserialize)]
struct InputWord {
    word: String,
    #[serde(default)]
    injected: Vec<Injected>,
}

/// A knowledge item: a ready string, or a `[predicate, object]` pair joined per `--predicate`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Injected {
    Text(String),
    Pair([String; 2]),
}

/// One output line (field names are the issue's contract).
#[derive(Serialize)]
struct OutputLine<'a> {
    tokens: &'a [String],
    input_ids: &'a [u32],
    soft_positions: &'a [u32],
    knowledge_mask: &'a [u8],
    visible_matrix: Vec<String>,
}

/// Runs `zhishi kbert` on stdin, writing one JSON line per input line to stdout.
pub fn run(args: KbertArgs) -> anyhow::Result<ExitCode> {
    let mut plan = zhishi::files::Plan::new();
    plan.read("--vocab", &args.vocab);
    if let Some(db) = &args.db {
        plan.read("--db", db);
    }
    if let Some(svg) = &args.svg {
        plan.write("--svg", svg);
    }
    plan.check()?;
    // Uncased BERT vocabularies hold lower-case letters only; K-BERT's lookup is exact.
    let vocab = CharVocab::from_file(&args.vocab)?.with_lowercase_fallback(!args.compat);
    let mode = if args.compat {
        InjectionMode::Compat
    } else {
        InjectionMode::Improved
    };
    let config = KbertConfig::new(args.max_length)
        .max_entities(args.max_entities)
        .mode(mode);
    // Built on the first text-only line, so tree-only input needs no store.
    let mut linker: Option<Linker<Store>> = None;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading stdin line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let input: InputLine = serde_json::from_str(&line)
            .context(r#"expected {"text": ..., "tree": [{"word": ..., "injected": [...]}]}"#)
            .with_context(|| format!("stdin line {number}"))?;
        let tree = match input.tree {
            Some(words) => tree_from_input(&input.text, words, args.predicate)
                .with_context(|| format!("stdin line {number}"))?,
            None => {
                if linker.is_none() {
                    let Some(db) = &args.db else {
                        bail!("stdin line {number}: text-only input needs --db DIR (the KG to link against), or give a \"tree\"");
                    };
                    let store = Store::open(db)
                        .with_context(|| format!("opening KG store {}", db.display()))?;
                    linker = Some(Linker::build(store, LinkOptions::default())?);
                }
                let linker = linker.as_ref().context("linker")?;
                tree_from_text(linker, &input.text, args.max_entities, args.predicate)
                    .with_context(|| format!("stdin line {number}: linking"))?
            }
        };
        let input =
            flatten(&tree, &vocab, &config).with_context(|| format!("stdin line {number}"))?;
        if let Some(dir) = &args.svg {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(format!("{number}.svg"));
            zhishi::files::write_file(&path, zhishi::knowledge::tree_svg(&input)?)?;
        }
        let visible_matrix = (0..input.visible.len())
            .map(|row| input.visible.row_string(row))
            .collect();
        let record = OutputLine {
            tokens: &input.tokens,
            input_ids: &input.input_ids,
            soft_positions: &input.soft_positions,
            knowledge_mask: &input.knowledge_mask,
            visible_matrix,
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Turns a given tree into a sentence tree, checking its words spell the text.
fn tree_from_input(
    text: &str,
    words: Vec<InputWord>,
    with_predicate: bool,
) -> anyhow::Result<SentenceTree> {
    let tree = SentenceTree {
        words: words
            .into_iter()
            .map(|w| TreeWord {
                word: w.word,
                injected: w
                    .injected
                    .into_iter()
                    .map(|item| match item {
                        Injected::Text(text) => text,
                        Injected::Pair([predicate, object]) => {
                            knowledge_string(&predicate, &object, with_predicate)
                        }
                    })
                    .collect(),
            })
            .collect(),
    };
    let spelled = tree.text();
    if !spells_dropping_whitespace(&spelled, text) {
        bail!(
            "the tree's words spell {spelled:?} but \"text\" is {text:?}; the words must concatenate to the text (whitespace of the text may be left out)"
        );
    }
    Ok(tree)
}

/// Whether `spelled` is `text` with some of its whitespace left out, as K-BERT's segmenter
/// leaves it out (the authors' code takes such sentences; 8 of 344 reference records).
fn spells_dropping_whitespace(spelled: &str, text: &str) -> bool {
    let mut words = spelled.chars().peekable();
    for c in text.chars() {
        if words.peek() == Some(&c) {
            words.next();
        } else if !c.is_whitespace() {
            return false;
        }
    }
    words.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::spells_dropping_whitespace;

    #[test]
    fn trees_may_leave_out_the_texts_whitespace() {
        assert!(spells_dropping_whitespace("头痛发热", "头痛 发热"));
        assert!(spells_dropping_whitespace("头痛 发热", "头痛 发热"));
        assert!(spells_dropping_whitespace("ab", " a\tb "));
        assert!(!spells_dropping_whitespace("头痛发", "头痛 发热"));
        assert!(!spells_dropping_whitespace("头痛发热", "头痛发烧"));
        assert!(!spells_dropping_whitespace("a b", "ab"));
    }
}
