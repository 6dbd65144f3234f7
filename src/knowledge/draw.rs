//! A K-BERT sentence tree as a picture (SVG, plotters): the sentence tokens on the trunk at
//! their soft positions, each injected branch hanging below its anchor at the positions it
//! continues from, and the visible matrix as a heat map (who may attend to whom). The heat
//! map is quadratic in the tokens, so at most [`MAX_DRAWN_TOKENS`] are drawn, whoever asks
//! (`zhishi kbert --svg`, the HTTP tree endpoint).
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::kbert::KbertInput;

/// Why the tree could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the K-BERT tree: {0}")]
pub struct DrawError(String);

/// The font families asked for, CJK ones first, so a viewer without a default CJK font still
/// finds one it has (the page's CSS names the same).
const FONTS: &str = "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Hiragino Sans GB, \
                     Microsoft YaHei, WenQuanYi Micro Hei, sans-serif";

/// Most tokens drawn (`[CLS]` included): a longer input is drawn up to here, its title says
/// so. 160 tokens are 25,600 heat-map cells, a few MB of SVG.
pub const MAX_DRAWN_TOKENS: usize = 160;

const CELL: i32 = 34;
const TRUNK: RGBColor = RGBColor(31, 119, 180);

/// Fill colours of branches, alternating so that two branches side by side read as two.
const BRANCHES: [RGBColor; 2] = [RGBColor(255, 127, 14), RGBColor(148, 103, 189)];

/// Which branch each of the `input`'s real tokens is on (0 = the trunk, 1.. = the injected
/// branches in order): a branch starts at a knowledge token after a trunk token or where soft
/// positions restart.
pub fn branch_ids(input: &KbertInput) -> Vec<usize> {
    let mut ids = Vec::with_capacity(input.real_len);
    let mut last = 0;
    for i in 0..input.real_len {
        if input.knowledge_mask[i] == 0 {
            ids.push(0);
            continue;
        }
        let starts = i == 0
            || input.knowledge_mask[i - 1] == 0
            || input.soft_positions[i] <= input.soft_positions[i - 1];
        if starts {
            last += 1;
        }
        ids.push(last);
    }
    ids
}

/// The row (0 = trunk, 1.. below it) each real token is drawn on: each branch takes the
/// highest row where it leaves a free cell on both sides of every branch already there, so
/// branches never touch and neighbouring anchors' branches read as separate.
pub fn tree_rows(input: &KbertInput) -> Vec<usize> {
    let ids = branch_ids(input);
    // Each branch's soft-position span, in order.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, &b) in ids.iter().enumerate() {
        if b == 0 {
            continue;
        }
        let p = input.soft_positions[i] as usize;
        match spans.get_mut(b - 1) {
            Some(span) => span.1 = span.1.max(p),
            None => spans.push((p, p)),
        }
    }
    // Greedy interval packing: rows[r] holds the spans placed on row r + 1.
    let mut placed: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut row_of = Vec::with_capacity(spans.len());
    for &(lo, hi) in &spans {
        let free = |row: &Vec<(usize, usize)>| row.iter().all(|&(a, b)| hi + 1 < a || b + 1 < lo);
        let r = match placed.iter().position(free) {
            Some(r) => r,
            None => {
                placed.push(Vec::new());
                placed.len() - 1
            }
        };
        placed[r].push((lo, hi));
        row_of.push(r + 1);
    }
    ids.iter()
        .map(|&b| if b == 0 { 0 } else { row_of[b - 1] })
        .collect()
}

/// The SVG of `input`'s tree and visible matrix, over its first [`MAX_DRAWN_TOKENS`] tokens.
pub fn tree_svg(input: &KbertInput) -> Result<String, DrawError> {
    let n = input.real_len.min(MAX_DRAWN_TOKENS);
    let rows = tree_rows(input);
    let branch = branch_ids(input);
    let depth = rows[..n].iter().copied().max().unwrap_or(0) + 1;
    let width_cells = input.soft_positions[..n]
        .iter()
        .map(|&p| p as i32 + 1)
        .max()
        .unwrap_or(1)
        .max(n as i32);
    let tree_h = 50 + depth as i32 * (CELL + 22);
    let matrix_h = 40 + n as i32 * 14;
    let width = (60 + width_cells * CELL).max(60 + n as i32 * 14 + 40) as u32;
    let height = (tree_h + matrix_h + 20) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| DrawError(e.to_string());
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let title = (FONTS, 16).into_font();
        let heading = if n < input.real_len {
            format!(
                "K-BERT sentence tree (number = soft position; first {n} of {} tokens)",
                input.real_len
            )
        } else {
            "K-BERT sentence tree (number = soft position)".to_string()
        };
        root.draw(&Text::new(heading, (10, 8), title.clone()))
            .map_err(|e| err(&e))?;
        let label = (FONTS, 15).into_font();
        let centred = label
            .clone()
            .into_text_style(&root)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let small = (FONTS, 11)
            .into_font()
            .into_text_style(&root)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let cell_at = |i: usize| {
            let x = 30 + input.soft_positions[i] as i32 * CELL;
            let y = 40 + rows[i] as i32 * (CELL + 22);
            (x, y)
        };
        for i in 0..n {
            let (x, y) = cell_at(i);
            let colour = match branch[i] {
                0 => TRUNK,
                b => BRANCHES[(b - 1) % BRANCHES.len()],
            };
            // Edge from the previous token of the same branch, or from the anchor.
            if i > 0 && rows[i] > 0 {
                // Along the branch from its previous token, or down from the anchor.
                let edge = if branch[i - 1] == branch[i] {
                    let (px, py) = cell_at(i - 1);
                    vec![(px + CELL - 4, py + CELL / 2 - 2), (x, y + CELL / 2 - 2)]
                } else {
                    let anchor = (0..i).rev().find(|&j| rows[j] == 0).unwrap_or(0);
                    let (ax, ay) = cell_at(anchor);
                    vec![(ax + CELL / 2 - 2, ay + CELL - 4), (x + CELL / 2 - 2, y)]
                };
                root.draw(&PathElement::new(edge, BLACK.mix(0.5)))
                    .map_err(|e| err(&e))?;
            } else if i > 0 && rows[i] == 0 {
                let prev = (0..i).rev().find(|&j| rows[j] == 0).unwrap_or(0);
                let (px, py) = cell_at(prev);
                root.draw(&PathElement::new(
                    vec![(px + CELL - 4, py + CELL / 2 - 2), (x, y + CELL / 2 - 2)],
                    BLACK.mix(0.5),
                ))
                .map_err(|e| err(&e))?;
            }
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL - 4, y + CELL - 4)],
                colour.mix(0.18).filled(),
            ))
            .map_err(|e| err(&e))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + CELL - 4, y + CELL - 4)],
                colour.stroke_width(1),
            ))
            .map_err(|e| err(&e))?;
            let token = &input.tokens[i];
            let shown: String = if token.chars().count() > 3 {
                token.chars().take(2).chain(['…']).collect()
            } else {
                token.clone()
            };
            root.draw(&Text::new(
                shown,
                (x + CELL / 2 - 2, y + CELL / 2 - 2),
                centred.clone(),
            ))
            .map_err(|e| err(&e))?;
            root.draw(&Text::new(
                input.soft_positions[i].to_string(),
                (x + CELL / 2 - 2, y + CELL + 6),
                small.clone(),
            ))
            .map_err(|e| err(&e))?;
        }
        // The visible matrix: dark = may attend.
        let top = tree_h + 10;
        root.draw(&Text::new(
            "visible matrix (row attends to column)",
            (10, top),
            title,
        ))
        .map_err(|e| err(&e))?;
        for r in 0..n {
            for c in 0..n {
                let (x, y) = (30 + c as i32 * 14, top + 26 + r as i32 * 14);
                let fill = if input.visible.get(r, c) {
                    if input.knowledge_mask[r] == 1 || input.knowledge_mask[c] == 1 {
                        BRANCHES[0].filled()
                    } else {
                        TRUNK.filled()
                    }
                } else {
                    RGBColor(235, 235, 235).filled()
                };
                root.draw(&Rectangle::new([(x, y), (x + 13, y + 13)], fill))
                    .map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{flatten, CharVocab, KbertConfig, SentenceTree, TreeWord};

    fn example() -> KbertInput {
        let vocab = CharVocab::from_tokens(
            [
                "[PAD]", "[UNK]", "[CLS]", "[SEP]", "北", "京", "首", "都", "城", "市", "好",
            ]
            .map(String::from),
        )
        .unwrap();
        let tree = SentenceTree {
            words: vec![
                TreeWord {
                    word: "北京".into(),
                    injected: vec!["首都".into(), "城市".into()],
                },
                TreeWord {
                    word: "好".into(),
                    injected: Vec::new(),
                },
            ],
        };
        flatten(&tree, &vocab, &KbertConfig::new(16).max_entities(2)).unwrap()
    }

    #[test]
    fn branches_of_neighbouring_words_get_rows_of_their_own() {
        let vocab = CharVocab::from_tokens(
            [
                "[PAD]", "[UNK]", "[CLS]", "[SEP]", "北", "京", "首", "都", "城", "市", "好",
            ]
            .map(String::from),
        )
        .unwrap();
        let word = |w: &str, injected: &[&str]| TreeWord {
            word: w.into(),
            injected: injected.iter().map(|s| s.to_string()).collect(),
        };
        // 北京 (首都) 好 (城市) 北 北 北 (京都): the first two branches would share soft
        // position 4 on one row; the third is far enough from both to go back to row 1.
        let tree = SentenceTree {
            words: vec![
                word("北京", &["首都"]),
                word("好", &["城市"]),
                word("北北北", &["京都"]),
            ],
        };
        let input = flatten(&tree, &vocab, &KbertConfig::new(32).max_entities(2)).unwrap();
        assert_eq!(
            branch_ids(&input),
            [0, 0, 0, 1, 1, 0, 2, 2, 0, 0, 0, 3, 3, 0]
        );
        assert_eq!(
            tree_rows(&input),
            [0, 0, 0, 1, 1, 0, 2, 2, 0, 0, 0, 1, 1, 0]
        );
    }

    #[test]
    fn branches_hang_below_their_anchor() {
        let input = example();
        // [CLS] 北 京 (首 都) (城 市) 好 [SEP]
        assert_eq!(tree_rows(&input), [0, 0, 0, 1, 1, 2, 2, 0, 0]);
        assert_eq!(branch_ids(&input), [0, 0, 0, 1, 1, 2, 2, 0, 0]);
        let svg = tree_svg(&input).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("首") && svg.contains("visible matrix"));
        // One cell per real token pair in the heat map plus two rectangles per token.
        assert_eq!(svg.matches("<rect").count(), 1 + 81 + 2 * 9);
    }
}
