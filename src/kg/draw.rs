//! A small KG subgraph as a picture (SVG, plotters), for `zhishi kg neighbors|path --format
//! svg`: a radial layout around one term (rings by hop distance, each ring's terms spread
//! evenly by angle in the order of the terms that reached them, so a term sits near its
//! parent), one arrow per triple labelled with its predicate.
use std::collections::{HashMap, VecDeque};
use std::f64::consts::TAU;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Why the graph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the graph: {0}")]
pub struct DrawError(String);

/// Distance between rings, in pixels.
const RING: f64 = 170.0;
/// Node radius, in pixels.
const NODE: i32 = 7;
/// Space around the outer ring for labels, in pixels.
const MARGIN: f64 = 130.0;
const CENTRE: RGBColor = RGBColor(214, 39, 40);
const TERM: RGBColor = RGBColor(31, 119, 180);

/// Where [`radial_layout`] puts the terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Each term with its position in pixels (the centre term at (0, 0)), in first-seen order.
    pub terms: Vec<(String, (f64, f64))>,
    /// Rings around the centre.
    pub rings: usize,
}

/// Position of every term: `centre` at the middle, the others on rings by their hop distance
/// from it (edges followed in either direction; terms not connected to it go on the outer ring).
pub fn radial_layout(centre: &str, triples: &[(String, String, String)]) -> Layout {
    let mut names: Vec<&str> = vec![centre];
    let mut index: HashMap<&str, usize> = HashMap::from([(centre, 0)]);
    let mut adjacent: Vec<Vec<usize>> = vec![Vec::new()];
    for (s, _, o) in triples {
        let mut ends = [0; 2];
        for (end, name) in ends.iter_mut().zip([s.as_str(), o.as_str()]) {
            *end = *index.entry(name).or_insert_with(|| {
                names.push(name);
                adjacent.push(Vec::new());
                names.len() - 1
            });
        }
        adjacent[ends[0]].push(ends[1]);
        adjacent[ends[1]].push(ends[0]);
    }
    // Breadth-first from the centre: distance and the term each was reached from.
    let mut distance = vec![usize::MAX; names.len()];
    let mut parent = vec![0; names.len()];
    distance[0] = 0;
    let mut queue = VecDeque::from([0]);
    while let Some(u) = queue.pop_front() {
        for &v in &adjacent[u] {
            if distance[v] == usize::MAX {
                distance[v] = distance[u] + 1;
                parent[v] = u;
                queue.push_back(v);
            }
        }
    }
    let reached = distance
        .iter()
        .filter(|&&d| d != usize::MAX)
        .max()
        .copied()
        .unwrap_or(0);
    let outer = reached + usize::from(distance.contains(&usize::MAX));
    for d in &mut distance {
        if *d == usize::MAX {
            *d = outer;
        }
    }
    let mut angle = vec![0.0f64; names.len()];
    let mut position = vec![(0.0, 0.0); names.len()];
    for ring in 1..=outer {
        let mut on_ring: Vec<usize> = (0..names.len()).filter(|&i| distance[i] == ring).collect();
        // In the angular order of their parents, so branches do not cross.
        on_ring.sort_by(|&a, &b| {
            angle[parent[a]]
                .total_cmp(&angle[parent[b]])
                .then(a.cmp(&b))
        });
        let n = on_ring.len() as f64;
        // Each ring turned a little further, so spokes do not line up and a path spirals out.
        let turn = (ring - 1) as f64 * 0.35;
        for (k, &i) in on_ring.iter().enumerate() {
            let a = k as f64 / n * TAU + turn;
            angle[i] = a;
            let r = ring as f64 * RING;
            position[i] = (r * a.sin(), -r * a.cos());
        }
    }
    let terms = names
        .iter()
        .zip(position)
        .map(|(name, p)| (name.to_string(), p))
        .collect();
    Layout {
        terms,
        rings: outer,
    }
}

/// The SVG of `triples` (subject, predicate, object names) laid out around `centre`.
pub fn graph_svg(centre: &str, triples: &[(String, String, String)]) -> Result<String, DrawError> {
    let Layout {
        terms: placed,
        rings,
    } = radial_layout(centre, triples);
    let half = rings as f64 * RING + MARGIN;
    let size = (2.0 * half).max(300.0) as u32;
    let mid = size as f64 / 2.0;
    let at: HashMap<&str, (i32, i32)> = placed
        .iter()
        .map(|(name, (x, y))| (name.as_str(), ((mid + x) as i32, (mid + y) as i32)))
        .collect();
    let err = |e: &dyn std::fmt::Display| DrawError(e.to_string());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size, size)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let centred = |size: i32, colour: RGBColor| {
            ("sans-serif", size)
                .into_font()
                .color(&colour)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        let grey = RGBColor(110, 110, 110);
        for ring in 1..=rings {
            let r = (ring as f64 * RING) as i32;
            root.draw(&Circle::new((mid as i32, mid as i32), r, grey.mix(0.15)))
                .map_err(|e| err(&e))?;
        }
        // Triples between the same two terms share one arrow and one label.
        let mut arrows: Vec<(&str, String, &str)> = Vec::new();
        for (s, p, o) in triples {
            match arrows
                .iter_mut()
                .find(|(a, _, b)| (*a, *b) == (s.as_str(), o.as_str()))
            {
                Some((_, label, _)) => {
                    label.push_str(" / ");
                    label.push_str(p);
                }
                None => arrows.push((s, p.clone(), o)),
            }
        }
        for (s, p, o) in arrows {
            let (a, b) = (at[s], at[o]);
            let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
            let len = dx.hypot(dy).max(1.0);
            let (ux, uy) = (dx / len, dy / len);
            let from = (
                a.0 + (ux * NODE as f64) as i32,
                a.1 + (uy * NODE as f64) as i32,
            );
            let tip = (
                b.0 - (ux * (NODE + 1) as f64) as i32,
                b.1 - (uy * (NODE + 1) as f64) as i32,
            );
            root.draw(&PathElement::new(vec![from, tip], grey.stroke_width(1)))
                .map_err(|e| err(&e))?;
            // Arrowhead at the object.
            let back = |side: f64| {
                (
                    tip.0 - (ux * 10.0 - uy * side) as i32,
                    tip.1 - (uy * 10.0 + ux * side) as i32,
                )
            };
            root.draw(&Polygon::new(
                vec![tip, back(4.0), back(-4.0)],
                grey.filled(),
            ))
            .map_err(|e| err(&e))?;
            let label = ((a.0 + b.0) / 2, (a.1 + b.1) / 2);
            root.draw(&Text::new(p, label, centred(15, grey)))
                .map_err(|e| err(&e))?;
        }
        for (name, (px, py)) in &placed {
            let (x, y) = at[name.as_str()];
            let colour = if name == centre { CENTRE } else { TERM };
            root.draw(&Circle::new((x, y), NODE, colour.filled()))
                .map_err(|e| err(&e))?;
            // The name outside its ring (below the centre), clear of the arrows coming in.
            let r = px.hypot(*py);
            let (ux, uy) = if r > 0.0 {
                (px / r, py / r)
            } else {
                (0.0, 1.0)
            };
            let label = (x + (ux * 26.0) as i32, y + (uy * 20.0) as i32);
            root.draw(&Text::new(name.clone(), label, centred(19, BLACK)))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, p: &str, o: &str) -> (String, String, String) {
        (s.into(), p.into(), o.into())
    }

    #[test]
    fn terms_sit_on_rings_by_hop_distance() {
        let triples = [
            t("阿司匹林", "类别", "治疗"),
            t("阿司匹林", "义原", "药物"),
            t("青霉素", "义原", "药物"),
        ];
        let Layout {
            terms: placed,
            rings,
        } = radial_layout("阿司匹林", &triples);
        assert_eq!(rings, 2);
        let radius: HashMap<&str, f64> = placed
            .iter()
            .map(|(n, (x, y))| (n.as_str(), x.hypot(*y)))
            .collect();
        assert_eq!(radius["阿司匹林"], 0.0);
        assert!((radius["治疗"] - RING).abs() < 1e-9);
        assert!((radius["药物"] - RING).abs() < 1e-9);
        assert!((radius["青霉素"] - 2.0 * RING).abs() < 1e-9);
    }

    #[test]
    fn the_svg_names_every_term_and_predicate() {
        let triples = [t("阿司匹林", "类别", "治疗"), t("阿司匹林", "义原", "药物")];
        let svg = graph_svg("阿司匹林", &triples).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // One label per term and per triple.
        assert_eq!(svg.matches("<text").count(), 5, "{svg}");
        for word in ["阿司匹林", "治疗", "药物", "类别", "义原"] {
            assert!(svg.contains(word), "{word}: {svg}");
        }
        // The centre alone still draws.
        assert!(graph_svg("孤立", &[]).unwrap().contains("孤立"));
        // Two triples between the same terms: one arrow, both predicates.
        let both = [
            t("腰椎间盘突出", "类别", "疾病"),
            t("腰椎间盘突出", "义原", "疾病"),
        ];
        let svg = graph_svg("腰椎间盘突出", &both).unwrap();
        assert_eq!(svg.matches("<polygon").count(), 1, "{svg}");
        assert!(svg.contains("类别 / 义原"), "{svg}");
    }
}
