//! `zhishi chart RESULT.json... --output chart.svg`: bar charts (SVG, plotters) of benchmark
//! results, each bar a ratio of zhishi against the reference it was measured with (PyTorch,
//! PyKEEN, one thread, linear growth), a dashed line where the ratio is that reference's.
//!
//! The inputs are the files the benchmarks write, recognised by their shape:
//!
//! | shape | written by | bars |
//! |---|---|---|
//! | `{"bench":"encoder","results":[..]}` | `zhishi bench encoder` | `speedup_vs_pytorch_plain` per precision, input and threads |
//! | `{"bench":"run","results":[..]}` | `zhishi bench run` | model-stage `speedup_vs_pytorch_f32` (else `speedup_vs_onnx_int8`) per arm and threads |
//! | `{"bench":..,"ratio_tokens_per_s":..}` | `benches/ner_vs_pytorch.sh`, `benches/cls_vs_pytorch.sh` | one bar per file |
//! | lines `{"arm":..}` | `benches/ner_knowledge_arms.sh` (`arms.jsonl`) | training tokens/s over the `pytorch` arm's |
//! | lines `{"impl":"pykeen"..}`, `{"impl":"zhishi-.."}` | `benches/transe_vs_pykeen.sh` | PyKEEN time over zhishi's, training and whole process |
//! | lines `{"run":..,"chars_per_s":..}` | `benches/run_throughput.sh` | chars/s over the first 1-thread run's |
//! | `{"benchmark":"doc_length","rows":[..]}` | `benches/doc_length.sh` | `ratio_per_doubling` (2.0 = linear) |
//! | `{"compare":..,"arms":[..]}` | `zhishi compare --out` | each arm's mean metric over the `plain` arm's (or the first arm's) |
//!
//! Files of the same shape share one panel; a chart of several shapes stacks their panels.
//! `cpu`, `date`, `commit` and `transcribed` fields (top level or in the rows) are printed under
//! the panel.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// Arguments of `zhishi chart`.
#[derive(Args, Debug)]
pub struct ChartArgs {
    /// Benchmark results (JSON, or JSON lines) as the benchmarks write them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The SVG file to write.
    #[arg(long, short)]
    pub output: PathBuf,
}

/// Runs `zhishi chart`.
pub fn run(args: ChartArgs) -> Result<ExitCode> {
    let mut plan = zhishi::files::Plan::new();
    for input in &args.inputs {
        plan.read("input", input);
    }
    plan.write("--output", &args.output).check()?;
    let panels = args
        .inputs
        .iter()
        .map(|path| read_panel(path))
        .collect::<Result<Vec<_>>>()?;
    let svg = chart_svg(&merge(panels))?;
    zhishi::files::write_file(&args.output, svg)?;
    eprintln!("wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// The chart of one `zhishi compare` result (its JSON).
pub fn comparison_svg(value: &Value) -> Result<String> {
    let mut panel = recognise(value)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("not a comparison"))?;
    panel.notes = notes(value);
    chart_svg(&[panel])
}

/// Which benchmark a result file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Encoder,
    PipelineRun,
    NerVsPytorch,
    NerArms,
    Transe,
    RunThroughput,
    DocLength,
    Compare,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Encoder => "Encoder forward pass: PyTorch time / zhishi time",
            Kind::PipelineRun => "NER model stage: the reference's time / the arm's time",
            Kind::NerVsPytorch => "NER fine-tuning: zhishi tokens/s / PyTorch tokens/s",
            Kind::NerArms => "NER arms: training tokens/s / the PyTorch arm's",
            Kind::Transe => "TransE: PyKEEN time / zhishi time",
            Kind::RunThroughput => "zhishi run: chars/s / one thread's",
            Kind::DocLength => "Time per doubling of the document length (2.0 = linear)",
            Kind::Compare => "Does the KG help? Mean metric over seeds / the plain arm's",
        }
    }

    /// Whether a ratio above the line is the good side (time per doubling: below is).
    fn higher_is_better(self) -> bool {
        self != Kind::DocLength
    }

    /// What the dashed line stands for when the files of a panel disagree on the details.
    fn reference(self) -> &'static str {
        match self {
            Kind::Encoder | Kind::NerVsPytorch | Kind::NerArms => "PyTorch = 1.0",
            Kind::PipelineRun => "PyTorch f32 (or ONNX Runtime int8) = 1.0",
            Kind::Transe => "PyKEEN = 1.0",
            Kind::RunThroughput => "one thread = 1.0",
            Kind::DocLength => "2.0 = linear",
            Kind::Compare => "plain = 1.0",
        }
    }
}

/// One bar: a label and its ratio.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    label: String,
    value: f64,
}

/// One panel of the chart: the bars of one or more files of the same kind.
#[derive(Debug, Clone)]
struct Panel {
    kind: Kind,
    /// What the dashed line stands for (e.g. `PyKEEN (MRR 0.222) = 1.0`).
    reference: String,
    /// Where the dashed line is.
    line: f64,
    bars: Vec<Bar>,
    /// `cpu`, `date`, `commit`, `transcribed` values found in the files.
    notes: Vec<(&'static str, String)>,
    /// The files' names without extension, to tell their bars apart.
    sources: Vec<String>,
}

/// Reads one result file into a panel; an unknown shape is an error naming the file.
fn read_panel(path: &Path) -> Result<Panel> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value = parse(&text).with_context(|| format!("{}", path.display()))?;
    let mut panel = recognise(&value)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
        .ok_or_else(|| {
            anyhow!(
                "{}: not a benchmark result zhishi can chart; expected the JSON of `zhishi bench \
                 encoder` or `zhishi bench run`, benches/ner_vs_pytorch.sh, benches/ner_knowledge_arms.sh (arms.jsonl), \
                 benches/transe_vs_pykeen.sh, benches/run_throughput.sh or benches/doc_length.sh",
                path.display()
            )
        })?;
    panel.notes = notes(&value);
    panel.sources = vec![path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())];
    Ok(panel)
}

/// One JSON value, or JSON lines as an array.
fn parse(text: &str) -> Result<Value> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("neither JSON nor JSON lines (line {})", i + 1))
        })
        .collect::<Result<Vec<Value>>>()
        .map(Value::Array)
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The rows of a JSON-lines file (or an array); one row for an object.
fn rows(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The panel of a result of a known shape, `None` for any other shape, an error for a known
/// shape that lacks what the chart needs.
fn recognise(v: &Value) -> Result<Option<Panel>, String> {
    let panel = |kind: Kind, reference: String, line: f64, bars: Vec<Bar>| {
        if bars.is_empty() {
            return Err(format!("a {kind:?} result without any ratio to draw"));
        }
        Ok(Some(Panel {
            kind,
            reference,
            line,
            bars,
            notes: Vec::new(),
            sources: Vec::new(),
        }))
    };
    if text(v, "bench") == "encoder" {
        let bars = rows(&v["results"])
            .into_iter()
            .filter(|r| text(r, "impl") == "zhishi")
            .filter_map(|r| {
                let threads = num(r, "threads")?;
                Some(Bar {
                    label: format!(
                        "{} {}, {threads} thread{}",
                        text(r, "precision"),
                        text(r, "input"),
                        if threads == 1.0 { "" } else { "s" }
                    ),
                    value: num(r, "speedup_vs_pytorch_plain")?,
                })
            })
            .collect();
        let torch = match v["torch"].as_str() {
            Some(version) => format!("PyTorch {version} (f32, plain) = 1.0"),
            None => "PyTorch (f32, plain) = 1.0".into(),
        };
        return panel(Kind::Encoder, torch, 1.0, bars);
    }
    if text(v, "bench") == "run" {
        let results = rows(&v["results"]);
        // Ratios to PyTorch f32 when it ran, else to ONNX Runtime int8.
        let (base, key) = if results.iter().any(|r| text(r, "arm") == "pytorch-f32") {
            ("pytorch-f32", "speedup_vs_pytorch_f32")
        } else {
            ("onnx-int8", "speedup_vs_onnx_int8")
        };
        let bars = results
            .iter()
            .filter(|r| text(r, "arm") != base)
            .filter_map(|r| {
                let threads = num(r, "threads")?;
                let agree = num(r, "agreement_with_zhishi_f32")
                    .map_or(String::new(), |a| format!(", {:.1}% = f32", a * 100.0));
                Some(Bar {
                    label: format!(
                        "{}, {threads} thread{}: {:.0} tokens/s{agree}",
                        text(r, "arm"),
                        if threads == 1.0 { "" } else { "s" },
                        num(r, "ner_tokens_per_s")?,
                    ),
                    value: num(r, key)?,
                })
            })
            .collect();
        let reference = match base {
            "pytorch-f32" => match results
                .iter()
                .map(|r| text(r, "torch"))
                .find(|t| !t.is_empty())
            {
                Some(version) => format!("PyTorch {version} f32 = 1.0"),
                None => Kind::PipelineRun.reference().into(),
            },
            _ => "ONNX Runtime int8 = 1.0".into(),
        };
        return panel(Kind::PipelineRun, reference, 1.0, bars);
    }
    if let Some(ratio) = num(v, "ratio_tokens_per_s") {
        // The headline metric: F1 (NER), else accuracy (classification).
        let metric = if num(&v["zhishi"], "test_f1").is_some() {
            ("test_f1", "test F1")
        } else {
            ("test_accuracy", "test accuracy")
        };
        let score = |side: &str| num(&v[side], metric.0).map_or("?".into(), |f| format!("{f:.4}"));
        let bar = Bar {
            label: format!(
                "{}: {} {} vs {}",
                readable_run_name(text(v, "bench")),
                metric.1,
                score("zhishi"),
                score("pytorch")
            ),
            value: ratio,
        };
        return panel(
            Kind::NerVsPytorch,
            Kind::NerVsPytorch.reference().into(),
            1.0,
            vec![bar],
        );
    }
    if !text(v, "compare").is_empty() {
        let arms = rows(&v["arms"]);
        let base = arms
            .iter()
            .find(|a| text(a, "arm") == "plain")
            .or(arms.first())
            .ok_or("a comparison without arms")?;
        let base_mean = num(base, "mean")
            .filter(|m| *m != 0.0)
            .ok_or("the reference arm has no nonzero mean")?;
        let metric = text(v, "metric");
        let bars = arms
            .iter()
            .filter_map(|a| {
                Some(Bar {
                    label: format!(
                        "{}: {metric} {:.4} ± {:.4}",
                        text(a, "arm"),
                        num(a, "mean")?,
                        num(a, "std")?
                    ),
                    value: num(a, "mean")? / base_mean,
                })
            })
            .collect();
        let reference = format!("{} ({metric} {base_mean:.4}) = 1.0", text(base, "arm"));
        return panel(Kind::Compare, reference, 1.0, bars);
    }
    if text(v, "benchmark") == "doc_length" {
        let bars = rows(&v["rows"])
            .into_iter()
            .filter_map(|r| {
                Some(Bar {
                    label: format!(
                        "{} {} {}",
                        text(r, "doc"),
                        text(r, "tool"),
                        size(num(r, "bytes")?)
                    ),
                    value: num(r, "ratio_per_doubling")?,
                })
            })
            .collect();
        return panel(
            Kind::DocLength,
            Kind::DocLength.reference().into(),
            2.0,
            bars,
        );
    }
    let rows = rows(v);
    let all = |key: &str| !rows.is_empty() && rows.iter().all(|r| r.get(key).is_some());
    if all("arm") {
        let reference = rows
            .iter()
            .find(|r| text(r, "arm").starts_with("pytorch"))
            .ok_or("arms without a pytorch arm to compare with")?;
        let base = num(reference, "train_tokens_per_s")
            .ok_or("the pytorch arm has no train_tokens_per_s")?;
        let bars = rows
            .iter()
            .filter(|r| !text(r, "arm").starts_with("pytorch"))
            .filter_map(|r| {
                Some(Bar {
                    label: format!("{} (test F1 {:.4})", text(r, "arm"), num(r, "test_f1")?),
                    value: num(r, "train_tokens_per_s")? / base,
                })
            })
            .collect();
        let reference = match num(reference, "test_f1") {
            Some(f1) => format!("PyTorch (test F1 {f1:.4}) = 1.0"),
            None => Kind::NerArms.reference().into(),
        };
        return panel(Kind::NerArms, reference, 1.0, bars);
    }
    let pykeen = rows.iter().find(|r| text(r, "impl") == "pykeen");
    if let Some(pykeen) = pykeen.filter(|_| all("impl")) {
        let mut bars = Vec::new();
        for r in rows
            .iter()
            .filter(|r| text(r, "impl").starts_with("zhishi"))
        {
            let name = text(r, "impl");
            let mrr = num(r, "mrr").map_or(String::new(), |m| format!(" (MRR {m:.3})"));
            if let (Some(p), Some(z)) = (num(pykeen, "train_wall_s"), num(r, "train_seconds")) {
                bars.push(Bar {
                    label: format!("{name}{mrr}: training"),
                    value: p / z,
                });
            }
            if let (Some(p), Some(z)) = (num(pykeen, "wall_seconds"), num(r, "wall_seconds")) {
                bars.push(Bar {
                    label: format!("{name}: whole process"),
                    value: p / z,
                });
            }
        }
        let reference = match num(pykeen, "mrr") {
            Some(m) => format!("PyKEEN (MRR {m:.3}) = 1.0"),
            None => Kind::Transe.reference().into(),
        };
        return panel(Kind::Transe, reference, 1.0, bars);
    }
    if all("run") && all("chars_per_s") {
        let base = rows
            .iter()
            .find(|r| num(r, "threads") == Some(1.0))
            .unwrap_or(&rows[0]);
        let base_cps = num(base, "chars_per_s")
            .filter(|c| *c > 0.0)
            .ok_or("no chars_per_s")?;
        let bars = rows
            .iter()
            .filter_map(|r| {
                let cps = num(r, "chars_per_s")?;
                Some(Bar {
                    label: format!("{} ({:.2} M chars/s)", text(r, "run"), cps / 1e6),
                    value: cps / base_cps,
                })
            })
            .collect();
        return panel(
            Kind::RunThroughput,
            format!("{} = 1.0", text(base, "run")),
            1.0,
            bars,
        );
    }
    Ok(None)
}

/// `10 KB`, `1.28 MB`.
fn size(bytes: f64) -> String {
    if bytes >= 1e6 {
        format!("{:.2} MB", bytes / 1e6)
    } else {
        format!("{} KB", (bytes / 1e3).round())
    }
}

/// A benchmark script's run name (`medical-n1000-e2-crffalse-plain-packed`) in words
/// (`medical, 1000 sentences, 2 epochs, no CRF, plain, packed`): the parts the scripts put in
/// it (`nN` sentences, `0` = all; `eN` epochs; `crf...`; `lN` max length; `tN` threads) spelt
/// out, anything else kept as it is.
fn readable_run_name(name: &str) -> String {
    let count = |part: &str, prefix: &str| {
        part.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .map(str::to_string)
    };
    name.split('-')
        .map(|part| {
            if let Some(n) = count(part, "n") {
                if n == "0" {
                    "all sentences".to_string()
                } else {
                    format!("{n} sentences")
                }
            } else if let Some(n) = count(part, "e") {
                format!("{n} epoch{}", if n == "1" { "" } else { "s" })
            } else if let Some(n) = count(part, "l") {
                format!("max length {n}")
            } else if let Some(n) = count(part, "t") {
                format!("{n} thread{}", if n == "1" { "" } else { "s" })
            } else if part == "crftrue" {
                "CRF".to_string()
            } else if part == "crffalse" {
                "no CRF".to_string()
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The distinct `cpu`, `date`, `commit` and `transcribed` values of a file, top level first.
fn notes(v: &Value) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for key in ["date", "commit", "cpu", "transcribed"] {
        for item in std::iter::once(v).chain(rows(v)) {
            let value = match item.get(key) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => continue,
            };
            if !out.iter().any(|(k, s)| *k == key && *s == value) {
                out.push((key, value));
            }
        }
    }
    out
}

/// Files of the same kind merged into one panel, kinds in the order first seen. When the
/// files' bars share labels, each label is prefixed with its file's name.
fn merge(panels: Vec<Panel>) -> Vec<Panel> {
    let mut out: Vec<(Panel, Vec<Vec<Bar>>)> = Vec::new();
    for panel in panels {
        match out.iter_mut().find(|(p, _)| p.kind == panel.kind) {
            Some((into, bars)) => {
                if into.reference != panel.reference {
                    into.reference = panel.kind.reference().into();
                }
                for note in panel.notes {
                    if !into.notes.contains(&note) {
                        into.notes.push(note);
                    }
                }
                into.sources.extend(panel.sources);
                bars.push(panel.bars);
            }
            None => {
                let bars = vec![panel.bars.clone()];
                out.push((panel, bars));
            }
        }
    }
    out.into_iter()
        .map(|(mut panel, per_file)| {
            let mut labels: Vec<&str> = per_file.iter().flatten().map(|b| &*b.label).collect();
            labels.sort_unstable();
            let clash = labels.windows(2).any(|w| w[0] == w[1]);
            panel.bars = per_file
                .iter()
                .zip(&panel.sources)
                .flat_map(|(bars, source)| {
                    bars.iter().map(move |b| Bar {
                        label: if clash {
                            format!("{source}: {}", b.label)
                        } else {
                            b.label.clone()
                        },
                        value: b.value,
                    })
                })
                .collect();
            panel
        })
        .collect()
}

/// Width of the chart in pixels.
const WIDTH: u32 = 900;
/// Height of one bar's row in pixels.
const ROW: u32 = 26;
/// Height of a panel besides its rows and notes (title, axis).
const CHROME: u32 = 100;
/// Height of a line of notes in pixels.
const NOTE_LINE: u32 = 15;
/// Characters per line of notes.
const NOTE_CHARS: usize = 150;
const BETTER: RGBColor = RGBColor(31, 119, 180);
const WORSE: RGBColor = RGBColor(255, 127, 14);
const LINE: RGBColor = RGBColor(214, 39, 40);

/// The notes under a panel: one line per key (`cpu: A | B`), wrapped at [`NOTE_CHARS`].
fn note_lines(notes: &[(&'static str, String)]) -> Vec<String> {
    let mut keys: Vec<&str> = notes.iter().map(|(k, _)| *k).collect();
    keys.dedup();
    let mut lines = Vec::new();
    for key in keys {
        let values: Vec<&str> = notes
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        let prefix = if key == "transcribed" {
            String::new()
        } else {
            format!("{key}: ")
        };
        let mut line = String::new();
        for word in format!("{prefix}{}", values.join(" | ")).split(' ') {
            if !line.is_empty() && line.chars().count() + word.chars().count() >= NOTE_CHARS {
                lines.push(std::mem::take(&mut line));
                line.push_str("    ");
            }
            if !line.trim().is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// The SVG of `panels`, stacked.
fn chart_svg(panels: &[Panel]) -> Result<String> {
    let heights: Vec<u32> = panels
        .iter()
        .map(|p| CHROME + ROW * p.bars.len() as u32 + NOTE_LINE * note_lines(&p.notes).len() as u32)
        .collect();
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, heights.iter().sum())).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing: {e}"))?;
        let breaks: Vec<i32> = heights
            .iter()
            .scan(0, |at, h| {
                *at += *h as i32;
                Some(*at)
            })
            .collect();
        let areas = root.split_by_breakpoints::<i32, i32, _, _>([], &breaks[..breaks.len() - 1]);
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(&root, area, panel).map_err(|e| anyhow!("drawing: {e}"))?;
        }
        root.present().map_err(|e| anyhow!("drawing: {e}"))?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_panel(root: &Area, area: &Area, panel: &Panel) -> Result<(), Box<dyn std::error::Error>> {
    let n = panel.bars.len();
    let (_, height) = area.dim_in_pixel();
    let notes = note_lines(&panel.notes);
    let notes_px = NOTE_LINE * notes.len() as u32 + 6;
    let (chart_area, _) = area.split_vertically(height - notes_px);
    let widest = panel
        .bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let label_px = (widest as u32 * 6 + 16).clamp(80, 440);
    let max = panel
        .bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(panel.line, f64::max);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(panel.kind.title(), ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0.0..max * 1.18, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(10)
        .light_line_style(TRANSPARENT)
        .x_desc(format!("ratio (dashed line: {})", panel.reference))
        .x_label_formatter(&|v| {
            if max >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        })
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13))
        .draw()?;
    // Bar i from the top.
    let y = |i: usize| (n - 1 - i) as f64;
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
        let above = b.value >= panel.line;
        let colour = if above == panel.kind.higher_is_better() {
            BETTER
        } else {
            WORSE
        };
        Rectangle::new(
            [(0.0, y(i) + 0.18), (b.value, y(i) + 0.82)],
            colour.filled(),
        )
    }))?;
    let value_style = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, b)| {
        EmptyElement::at((b.value, y(i) + 0.5))
            + Text::new(format!("{:.2}x", b.value), (4, 0), value_style.clone())
    }))?;
    chart.draw_series(DashedLineSeries::new(
        [(panel.line, 0.0), (panel.line, n as f64)],
        6,
        4,
        LINE.stroke_width(2),
    ))?;
    let label_style = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, b) in panel.bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, y(i) + 0.5));
        root.draw(&Text::new(b.label.clone(), (x - 6, y), label_style.clone()))?;
    }
    let (left, top) = area.get_base_pixel();
    let note_style = ("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90));
    for (i, line) in notes.into_iter().enumerate() {
        let y = top + (height - notes_px) as i32 + (NOTE_LINE as usize * i) as i32;
        root.draw(&Text::new(line, (left + 12, y), note_style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arms_are_ratios_to_the_pytorch_arm() {
        let arms = json!([
            {"arm": "pytorch-linear", "test_f1": 0.9176, "train_tokens_per_s": 225.0},
            {"arm": "kbert-crf", "test_f1": 0.9403, "train_tokens_per_s": 613.0},
        ]);
        let panel = recognise(&arms).unwrap().unwrap();
        assert_eq!(panel.kind, Kind::NerArms);
        assert_eq!(panel.reference, "PyTorch (test F1 0.9176) = 1.0");
        assert_eq!(panel.bars.len(), 1);
        assert_eq!(panel.bars[0].label, "kbert-crf (test F1 0.9403)");
        assert!((panel.bars[0].value - 613.0 / 225.0).abs() < 1e-12);
    }

    #[test]
    fn clashing_labels_of_several_files_name_their_file() {
        let one = |source: &str, value: f64| Panel {
            kind: Kind::Encoder,
            reference: "PyTorch (f32, plain) = 1.0".into(),
            line: 1.0,
            bars: vec![Bar {
                label: "f32 plain, 1 thread".into(),
                value,
            }],
            notes: vec![("cpu", "AMD EPYC".into())],
            sources: vec![source.into()],
        };
        let merged = merge(vec![one("run-a", 1.11), one("run-b", 1.05)]);
        assert_eq!(merged.len(), 1);
        let labels: Vec<&str> = merged[0].bars.iter().map(|b| &*b.label).collect();
        assert_eq!(
            labels,
            ["run-a: f32 plain, 1 thread", "run-b: f32 plain, 1 thread"]
        );
        assert_eq!(merged[0].notes, [("cpu", "AMD EPYC".to_string())]);
    }

    #[test]
    fn bench_run_bars_are_model_stage_speedups_over_pytorch() {
        let run = json!({"bench": "run", "results": [
            {"arm": "zhishi-int8", "threads": 1, "ner_tokens_per_s": 900.0,
             "speedup_vs_pytorch_f32": 2.5, "agreement_with_zhishi_f32": 0.99},
            {"arm": "pytorch-f32", "threads": 1, "ner_tokens_per_s": 360.0,
             "speedup_vs_pytorch_f32": 1.0, "torch": "2.15.0"},
        ]});
        let panel = recognise(&run).unwrap().unwrap();
        assert_eq!(panel.kind, Kind::PipelineRun);
        assert_eq!(panel.reference, "PyTorch 2.15.0 f32 = 1.0");
        assert_eq!(panel.bars.len(), 1);
        assert_eq!(
            panel.bars[0].label,
            "zhishi-int8, 1 thread: 900 tokens/s, 99.0% = f32"
        );
        assert_eq!(panel.bars[0].value, 2.5);
    }

    #[test]
    fn sizes_read_as_kb_and_mb() {
        assert_eq!(size(10_000.0), "10 KB");
        assert_eq!(size(1_280_000.0), "1.28 MB");
    }

    #[test]
    fn run_names_read_as_words() {
        assert_eq!(
            readable_run_name("medical-n1000-e2-crffalse-plain-packed-t1-session14"),
            "medical, 1000 sentences, 2 epochs, no CRF, plain, packed, 1 thread, session14"
        );
        assert_eq!(
            readable_run_name("chnsenticorp-n0-e1-l128"),
            "chnsenticorp, all sentences, 1 epoch, max length 128"
        );
    }
}
