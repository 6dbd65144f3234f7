//! Graph views of the store (petgraph) for traversal: k-hop neighbourhoods, shortest relation
//! paths and connected components. Used by the linker (coherence) and KBQA.
//!
//! Edges are undirected for traversal (a relation path may follow a triple backwards) but
//! each edge keeps its original [`Triple`], so paths report the real direction.
use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::unionfind::UnionFind;
use petgraph::visit::EdgeRef;

use super::store::{Pattern, Store, StoreError, TermId, Triple};

/// A loaded part of the knowledge graph.
#[derive(Debug, Default, Clone)]
pub struct KgGraph {
    graph: UnGraph<TermId, Triple>,
    nodes: HashMap<TermId, NodeIndex>,
}

/// Limits for loading a neighbourhood, so hub nodes cannot blow up memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadLimits {
    /// Stop expanding once this many nodes are loaded.
    pub max_nodes: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self { max_nodes: 200_000 }
    }
}

impl KgGraph {
    /// Loads every triple of the store.
    pub fn load_all(store: &Store) -> Result<KgGraph, StoreError> {
        let mut graph = KgGraph::default();
        for triple in store.triples(Pattern::default()) {
            graph.add(triple?);
        }
        Ok(graph)
    }

    /// Loads the triples around `seeds`: every node within `hops` (following triples in
    /// either direction) and every triple incident to a node closer than `hops`.
    pub fn load_neighbourhood(
        store: &Store,
        seeds: &[TermId],
        hops: usize,
        limits: LoadLimits,
    ) -> Result<KgGraph, StoreError> {
        let mut graph = KgGraph::default();
        let mut distance: HashMap<TermId, usize> = HashMap::new();
        let mut queue = VecDeque::new();
        for &seed in seeds {
            graph.node(seed);
            if distance.insert(seed, 0).is_none() {
                queue.push_back(seed);
            }
        }
        let mut expanded: HashSet<TermId> = HashSet::new();
        while let Some(node) = queue.pop_front() {
            let d = distance[&node];
            if d >= hops {
                continue;
            }
            let outgoing = store.triples(Pattern {
                subject: Some(node),
                ..Pattern::default()
            });
            let incoming = store
                .triples(Pattern {
                    object: Some(node),
                    ..Pattern::default()
                })
                // Self-loops were already seen as outgoing.
                .filter(|t| t.as_ref().map_or(true, |t| t.subject != node));
            for triple in outgoing.chain(incoming) {
                let triple = triple?;
                let other = if triple.subject == node {
                    triple.object
                } else {
                    triple.subject
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = distance.entry(other) {
                    if graph.nodes.len() >= limits.max_nodes {
                        continue;
                    }
                    slot.insert(d + 1);
                    queue.push_back(other);
                }
                // A triple between two expanded nodes was added when the first was expanded.
                if !expanded.contains(&other) {
                    graph.add(triple);
                }
            }
            expanded.insert(node);
        }
        Ok(graph)
    }

    fn node(&mut self, id: TermId) -> NodeIndex {
        *self
            .nodes
            .entry(id)
            .or_insert_with(|| self.graph.add_node(id))
    }

    fn add(&mut self, triple: Triple) {
        let a = self.node(triple.subject);
        let b = self.node(triple.object);
        self.graph.add_edge(a, b, triple);
    }

    /// The loaded triples, each once.
    pub fn triples(&self) -> impl Iterator<Item = &Triple> + '_ {
        self.graph.edge_weights()
    }

    /// Number of loaded terms.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of triples loaded.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// Whether `id` is loaded.
    pub fn contains(&self, id: TermId) -> bool {
        self.nodes.contains_key(&id)
    }

    /// Nodes within `hops` of `id` (excluding `id`), with their distance, nearest first.
    pub fn neighbours(&self, id: TermId, hops: usize) -> Vec<(TermId, usize)> {
        let Some(&start) = self.nodes.get(&id) else {
            return Vec::new();
        };
        let mut distance: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
        let mut queue = VecDeque::from([start]);
        let mut out = Vec::new();
        while let Some(node) = queue.pop_front() {
            let d = distance[&node];
            if d >= hops {
                continue;
            }
            for next in self.graph.neighbors(node) {
                if let std::collections::hash_map::Entry::Vacant(slot) = distance.entry(next) {
                    slot.insert(d + 1);
                    out.push((self.graph[next], d + 1));
                    queue.push_back(next);
                }
            }
        }
        out.sort_by_key(|&(id, d)| (d, id));
        out
    }

    /// A shortest chain of triples linking `from` and `to` (either direction), if any.
    pub fn shortest_path(&self, from: TermId, to: TermId) -> Option<Vec<Triple>> {
        let (&start, &goal) = (self.nodes.get(&from)?, self.nodes.get(&to)?);
        if start == goal {
            return Some(Vec::new());
        }
        let mut via: HashMap<NodeIndex, (NodeIndex, Triple)> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for edge in self.graph.edges(node) {
                let next = if edge.source() == node {
                    edge.target()
                } else {
                    edge.source()
                };
                if next == start || via.contains_key(&next) {
                    continue;
                }
                via.insert(next, (node, *edge.weight()));
                if next == goal {
                    let mut path = Vec::new();
                    let mut cur = goal;
                    while cur != start {
                        let (prev, triple) = via[&cur];
                        path.push(triple);
                        cur = prev;
                    }
                    path.reverse();
                    return Some(path);
                }
                queue.push_back(next);
            }
        }
        None
    }

    /// Connected components (ignoring direction), largest first, each sorted by id.
    pub fn connected_components(&self) -> Vec<Vec<TermId>> {
        let mut sets = UnionFind::new(self.graph.node_count());
        for edge in self.graph.edge_references() {
            sets.union(edge.source().index(), edge.target().index());
        }
        let mut groups: HashMap<usize, Vec<TermId>> = HashMap::new();
        for node in self.graph.node_indices() {
            groups
                .entry(sets.find(node.index()))
                .or_default()
                .push(self.graph[node]);
        }
        let mut out: Vec<Vec<TermId>> = groups.into_values().collect();
        for group in &mut out {
            group.sort_unstable();
        }
        out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        out
    }
}

/// Shortest relation path between two entities within `max_hops`, loading only the two
/// neighbourhoods of radius `ceil(max_hops / 2)` (every path that short lies inside them).
pub fn shortest_path(
    store: &Store,
    from: TermId,
    to: TermId,
    max_hops: usize,
    limits: LoadLimits,
) -> Result<Option<Vec<Triple>>, StoreError> {
    let radius = max_hops.div_ceil(2);
    let graph = KgGraph::load_neighbourhood(store, &[from, to], radius, limits)?;
    Ok(graph
        .shortest_path(from, to)
        .filter(|path| path.len() <= max_hops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::store::test_support::store_with as build;

    #[test]
    fn finds_neighbours_paths_and_components() {
        let (_dir, store) = build(&[
            ("山西大学", "所在地", "太原"),
            ("太原", "所属省份", "山西"),
            ("晋祠", "位于", "太原"),
            ("苦恋", "作者", "白桦"),
        ]);
        let id = |n: &str| store.term_id(n).unwrap().unwrap();
        let graph = KgGraph::load_all(&store).unwrap();
        assert_eq!(graph.edge_count(), 4);
        let near: Vec<(TermId, usize)> = graph.neighbours(id("山西大学"), 2);
        assert!(near.contains(&(id("太原"), 1)));
        assert!(near.contains(&(id("山西"), 2)));
        assert!(near.contains(&(id("晋祠"), 2)));
        assert!(!near.iter().any(|(n, _)| *n == id("白桦")));

        let path = graph.shortest_path(id("山西大学"), id("晋祠")).unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(path[0].subject, id("山西大学"));
        assert_eq!(
            path[1].subject,
            id("晋祠"),
            "second step follows 位于 backwards"
        );
        assert!(graph.shortest_path(id("山西大学"), id("白桦")).is_none());

        let components = graph.connected_components();
        assert_eq!(components.len(), 2);
        assert_eq!(components[0].len(), 4);
    }

    #[test]
    fn neighbourhood_loading_matches_the_full_graph_within_radius() {
        let (_dir, store) = build(&[
            ("a", "p", "b"),
            ("b", "p", "c"),
            ("c", "p", "d"),
            ("d", "p", "e"),
            ("x", "q", "b"),
        ]);
        let id = |n: &str| store.term_id(n).unwrap().unwrap();
        let local =
            KgGraph::load_neighbourhood(&store, &[id("a")], 2, LoadLimits::default()).unwrap();
        assert!(local.contains(id("c")));
        assert!(local.contains(id("x")));
        assert!(!local.contains(id("d")));
        assert_eq!(local.edge_count(), 3, "a-b, b-c, x-b; no duplicate edges");
        let path = shortest_path(&store, id("a"), id("e"), 4, LoadLimits::default()).unwrap();
        assert_eq!(path.map(|p| p.len()), Some(4));
        let too_far = shortest_path(&store, id("a"), id("e"), 3, LoadLimits::default()).unwrap();
        assert!(too_far.is_none());
    }
}
