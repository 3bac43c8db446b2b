//! The road graph (`roads/nodes.csv`, `roads/edges.csv`).
//!
//! Per city a jittered square grid of junctions (`n<city>-<cell>`) covering
//! the city plus a margin, with the lake's junctions left out. Each street
//! between grid neighbours is usually two-way (two directed rows of equal
//! length), sometimes one-way, sometimes missing; a few have a second,
//! longer parallel edge, a few diagonals cut across. Every length is
//! haversine × a detour factor in [1.02, 1.3], rounded *up* to 0.1 m, so it
//! is never shorter than the straight line.
//!
//! Traps for the router, on purpose:
//! - twin junctions `j<city>-<k>` at exactly the coordinates of the grid
//!   junction nearest to some towers and a store, linked to that junction's
//!   neighbours: snapping ties there, and the smaller `node_id` (the twin)
//!   must win (SPEC §3 step 3);
//! - an island of four junctions `n<city>-i<k>` in the lake, linked only to
//!   each other: the lake's tower snaps there and has no route;
//! - motorways `h<a>-<k>` chain neighbouring cities.

use super::geo::{haversine_m, offset, round6};
use super::rng::{Rng, Stream};
use super::world::{Geography, LAKE_RADIUS_M};

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) lat: f64,
    pub(crate) lon: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) length_m: f64,
    pub(crate) class: &'static str,
}

#[derive(Default)]
pub(crate) struct Roads {
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
}

/// Length of a road between two nodes: haversine × `detour`, rounded up to
/// 0.1 m (so `length_m >= haversine` always holds).
fn road_length(a: &Node, b: &Node, detour: f64) -> f64 {
    (haversine_m(a.lat, a.lon, b.lat, b.lon) * detour * 10.0).ceil() / 10.0
}

impl Roads {
    fn node(&mut self, id: String, lat: f64, lon: f64) -> u32 {
        self.nodes.push(Node {
            id,
            lat: round6(lat),
            lon: round6(lon),
        });
        self.nodes.len() as u32 - 1
    }

    fn edge(&mut self, from: u32, to: u32, detour: f64, class: &'static str) {
        let length_m = road_length(&self.nodes[from as usize], &self.nodes[to as usize], detour);
        self.edges.push(Edge {
            from,
            to,
            length_m,
            class,
        });
    }

    fn two_way(&mut self, a: u32, b: u32, detour: f64, class: &'static str) {
        self.edge(a, b, detour, class);
        self.edge(b, a, detour, class);
    }

    fn nearest(&self, nodes: &[u32], lat: f64, lon: f64) -> u32 {
        let d = |n: &u32| {
            let n = &self.nodes[*n as usize];
            haversine_m(lat, lon, n.lat, n.lon)
        };
        *nodes
            .iter()
            .min_by(|a, b| d(a).total_cmp(&d(b)))
            .expect("a city grid has nodes")
    }

    pub(crate) fn build(seed: u64, geo: &Geography, spacing_m: f64) -> Self {
        let mut roads = Roads::default();
        let half = geo.radius_m + 1_500.0;
        let g = (2.0 * half / spacing_m).ceil() as usize + 1;
        let mut city_nodes: Vec<Vec<u32>> = Vec::new();
        for (c, city) in geo.cities.iter().enumerate() {
            let (lake_lat, lake_lon) = geo.lakes[c];
            let mut grid: Vec<Option<u32>> = vec![None; g * g];
            let mut mine = Vec::new();
            for r in 0..g {
                for col in 0..g {
                    let cell = r * g + col;
                    let mut rng = Rng::at(seed, Stream::Road, (c as u64) << 40 | cell as u64);
                    let north = -half + r as f64 * spacing_m + rng.uniform(-0.25, 0.25) * spacing_m;
                    let east =
                        -half + col as f64 * spacing_m + rng.uniform(-0.25, 0.25) * spacing_m;
                    let (lat, lon) = offset(city.lat, city.lon, north, east);
                    if haversine_m(lat, lon, lake_lat, lake_lon) < LAKE_RADIUS_M {
                        continue;
                    }
                    let id = roads.node(format!("n{c}-{cell}"), lat, lon);
                    grid[cell] = Some(id);
                    mine.push(id);
                }
            }
            let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); roads.nodes.len()];
            for r in 0..g {
                for col in 0..g {
                    let Some(a) = grid[r * g + col] else { continue };
                    let mut rng = Rng::at(
                        seed,
                        Stream::Road,
                        (c as u64) << 40 | 1 << 39 | (r * g + col) as u64,
                    );
                    let right = (col + 1 < g).then(|| grid[r * g + col + 1]).flatten();
                    let down = (r + 1 < g).then(|| grid[(r + 1) * g + col]).flatten();
                    let diag = (r + 1 < g && col + 1 < g && rng.chance(0.04))
                        .then(|| grid[(r + 1) * g + col + 1])
                        .flatten();
                    for b in [right, down, diag].into_iter().flatten() {
                        let detour = rng.uniform(1.02, 1.3);
                        let class = if r % 6 == 0 || col % 6 == 0 {
                            "primary"
                        } else {
                            "residential"
                        };
                        match rng.weighted(&[0.04, 0.10, 0.86]) {
                            0 => continue, // no street here
                            1 if rng.chance(0.5) => roads.edge(a, b, detour, class),
                            1 => roads.edge(b, a, detour, class),
                            _ => roads.two_way(a, b, detour, class),
                        }
                        if rng.chance(0.03) {
                            // A slower parallel road between the same junctions.
                            roads.edge(a, b, detour * rng.uniform(1.3, 1.6), "service");
                        }
                        neighbours[a as usize].push(b);
                        neighbours[b as usize].push(a);
                    }
                }
            }
            // The island in the lake, reachable only from itself.
            let island: Vec<u32> = (0..4)
                .map(|k| {
                    let (n, e) = [
                        (110.0, -90.0),
                        (110.0, 100.0),
                        (-95.0, 100.0),
                        (-95.0, -90.0),
                    ][k];
                    let (lat, lon) = offset(lake_lat, lake_lon, n, e);
                    roads.node(format!("n{c}-i{k}"), lat, lon)
                })
                .collect();
            for k in 0..4 {
                roads.two_way(island[k], island[(k + 1) % 4], 1.05, "residential");
            }
            // Twins where towers 1 and 2 and the city's first store snap.
            let mut targets: Vec<(f64, f64)> = geo.city_towers[c]
                .clone()
                .skip(1)
                .take(2)
                .map(|t| (geo.towers[t as usize].lat, geo.towers[t as usize].lon))
                .collect();
            if let Some(s) = geo.stores.iter().find(|s| s.city as usize == c) {
                targets.push((s.lat, s.lon));
            }
            let mut twinned = Vec::new();
            for (k, (lat, lon)) in targets.into_iter().enumerate() {
                let orig = roads.nearest(&mine, lat, lon);
                if twinned.contains(&orig) || neighbours[orig as usize].is_empty() {
                    continue;
                }
                twinned.push(orig);
                let (olat, olon) = (
                    roads.nodes[orig as usize].lat,
                    roads.nodes[orig as usize].lon,
                );
                let twin = roads.node(format!("j{c}-{k}"), olat, olon);
                let mut rng = Rng::at(seed, Stream::Road, (c as u64) << 40 | 1 << 38 | k as u64);
                let nb = neighbours[orig as usize].clone();
                for (i, &b) in nb.iter().enumerate() {
                    if i < 2 || rng.chance(0.5) {
                        roads.two_way(twin, b, rng.uniform(1.02, 1.2), "primary");
                    }
                }
            }
            city_nodes.push(mine);
        }
        // Motorways between consecutive cities.
        for c in 1..geo.cities.len() {
            let (a, b) = (&geo.cities[c - 1], &geo.cities[c]);
            let from = roads.nearest(&city_nodes[c - 1], b.lat, b.lon);
            let to = roads.nearest(&city_nodes[c], a.lat, a.lon);
            let (f, t) = (&roads.nodes[from as usize], &roads.nodes[to as usize]);
            let (flat, flon, tlat, tlon) = (f.lat, f.lon, t.lat, t.lon);
            let hops = (haversine_m(flat, flon, tlat, tlon) / 15_000.0)
                .ceil()
                .max(1.0) as usize;
            let mut prev = from;
            for k in 1..hops {
                let x = k as f64 / hops as f64;
                let id = format!("h{}-{k}", c - 1);
                let next = roads.node(id, flat + (tlat - flat) * x, flon + (tlon - flon) * x);
                roads.two_way(prev, next, 1.12, "motorway");
                prev = next;
            }
            roads.two_way(prev, to, 1.12, "motorway");
        }
        roads
    }

    pub(crate) fn write_nodes(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["node_id", "lat", "lon"])?;
        for n in &self.nodes {
            w.write_record([
                n.id.as_str(),
                &format!("{:.6}", n.lat),
                &format!("{:.6}", n.lon),
            ])?;
        }
        Ok(())
    }

    pub(crate) fn write_edges(&self, w: &mut csv::Writer<impl std::io::Write>) -> csv::Result<()> {
        w.write_record(["from_node", "to_node", "length_m", "road_class"])?;
        for e in &self.edges {
            w.write_record([
                self.nodes[e.from as usize].id.as_str(),
                &self.nodes[e.to as usize].id,
                &format!("{:.1}", e.length_m),
                e.class,
            ])?;
        }
        Ok(())
    }
}

/// A reference router for tests: SPEC §3 step 3 on the in-memory graph.
#[cfg(test)]
pub(crate) mod reference {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    impl Roads {
        /// Nearest node by haversine, ties to the smallest `node_id`.
        pub(crate) fn snap(&self, lat: f64, lon: f64) -> u32 {
            let mut best = (f64::INFINITY, "", 0u32);
            for (i, n) in self.nodes.iter().enumerate() {
                let d = haversine_m(lat, lon, n.lat, n.lon);
                if d < best.0 || (d == best.0 && n.id.as_str() < best.1) {
                    best = (d, n.id.as_str(), i as u32);
                }
            }
            best.2
        }

        /// Shortest directed path lengths from `from` (Dijkstra; `INFINITY`
        /// where there is no route).
        pub(crate) fn distances_from(&self, from: u32) -> Vec<f64> {
            let mut out: Vec<Vec<(u32, f64)>> = vec![Vec::new(); self.nodes.len()];
            for e in &self.edges {
                out[e.from as usize].push((e.to, e.length_m));
            }
            let mut dist = vec![f64::INFINITY; self.nodes.len()];
            let mut heap = BinaryHeap::new();
            dist[from as usize] = 0.0;
            // Non-negative f64s order like their bit patterns.
            heap.push(Reverse((0f64.to_bits(), from)));
            while let Some(Reverse((d, v))) = heap.pop() {
                let d = f64::from_bits(d);
                if d > dist[v as usize] {
                    continue;
                }
                for &(w, len) in &out[v as usize] {
                    let nd = d + len;
                    if nd < dist[w as usize] {
                        dist[w as usize] = nd;
                        heap.push(Reverse((nd.to_bits(), w)));
                    }
                }
            }
            dist
        }
    }
}
