//! Distances on the sphere and the grid that turns "stores within r of a tower"
//! into an equi-join (SPEC §3.2), so the nearest-store dataflow never builds a
//! towers × stores cross product:
//!
//! ```text
//!   stores ──map(cell_of)──────────────┐
//!                                      ├─ join on cell ─ filter(haversine <= r) ─ min by (d, store_id)
//!   towers ──flat_map(cells_within r)──┘
//! ```
//!
//! Every store lands in exactly one cell; every tower is copied into each cell
//! that may hold a point within `r` of it. The exact haversine filter after the
//! join decides; the grid only has to be conservative (never miss a point) and
//! small (a handful of cells per tower).
//!
//! # The grid
//!
//! Rows are latitude bands of equal height `h` (the cell size in metres as an
//! angle). A row is cut into `n` equal longitude columns, `n` chosen so that a cell
//! is at least `h` wide even along its poleward edge: `n = ⌊360°·cos φ_pole / h⌋`,
//! at least 1. So cells are roughly square in metres at every latitude (a uniform
//! lat/lon grid would need thousands of columns per tower near a pole), the row
//! touching a pole is a single cell, and a disc of radius `h` meets 2–4 rows of
//! 2–4 columns wherever it is.
//!
//! `cells_within(p, r)` takes the latitude/longitude bounding box of the spherical
//! cap of radius `r` around `p`: latitudes `φ ± δ` with `δ = r/R`, longitudes
//! `λ ± asin(sin δ / cos φ)`; when the cap holds a pole (`|φ| + δ ≥ 90°`) every
//! longitude. Longitude intervals wrap at the antimeridian. `δ` is widened by a
//! relative 1e-7 and an absolute 1e-9 rad (6 mm) so floating-point rounding, in
//! the box or in the haversine of the caller's filter, can never drop a point.
//!
//! Unchecked assumption: coordinates are finite, `|lat| ≤ 90`; longitudes may be
//! any finite value (they are taken modulo 360°).

use crate::model::Point;
use std::f64::consts::{FRAC_PI_2, PI};

/// Mean Earth radius in metres (SPEC §3.2).
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres, exactly SPEC §3.2:
/// `d = 2R·asin(√(sin²(Δφ/2) + cos φ1·cos φ2·sin²(Δλ/2)))`.
pub fn haversine_m(a: Point, b: Point) -> f64 {
    let (phi1, phi2) = (a.lat.0.to_radians(), b.lat.0.to_radians());
    let dphi = (b.lat.0 - a.lat.0).to_radians();
    let dlambda = (b.lon.0 - a.lon.0).to_radians();
    let s_phi = (dphi / 2.0).sin();
    let s_lambda = (dlambda / 2.0).sin();
    let h = s_phi * s_phi + phi1.cos() * phi2.cos() * s_lambda * s_lambda;
    // Rounding can push h a hair above 1 for antipodal points.
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Rounds to the nearest integer, halves up (towards +∞): `2.5 → 3`, `-2.5 → -2`.
/// Exact for every finite `x` (unlike `(x + 0.5).floor()`, which turns
/// 0.49999999999999994 into 1). Out-of-range values saturate; NaN gives 0.
pub fn round_half_up(x: f64) -> i64 {
    let floor = x.floor();
    // x - floor(x) is exact in binary floating point.
    let r = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    r as i64
}

/// Widens an angular radius so rounding can never exclude a point (module doc).
fn widen(delta_rad: f64) -> f64 {
    delta_rad * (1.0 + 1e-7) + 1e-9
}

/// A latitude-band grid whose cells are at least `cell_m` metres on each side
/// (module doc). Cells are named `(row, column)`; rows count from the south pole.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    cell_m: f64,
    /// Row height in degrees.
    step_deg: f64,
    rows: i32,
}

impl Grid {
    /// A grid with cells of about `cell_m` metres, usually the join radius.
    /// `cell_m` is clamped to [1 m, half the circumference] (NaN counts as 1 m): the
    /// size only trades cells per query against points per cell, never correctness.
    pub fn new(cell_m: f64) -> Grid {
        let cell_m = if cell_m >= 1.0 {
            cell_m.min(PI * EARTH_RADIUS_M)
        } else {
            1.0
        };
        let step_deg = (cell_m / EARTH_RADIUS_M).to_degrees();
        let rows = ((180.0 / step_deg).ceil() as i32).max(1);
        Grid {
            cell_m,
            step_deg,
            rows,
        }
    }

    /// The cell size in metres (after clamping).
    pub fn cell_m(&self) -> f64 {
        self.cell_m
    }

    /// The cell holding `p`.
    pub fn cell_of(&self, p: Point) -> (i32, i32) {
        let row = self.row_of(p.lat.0);
        (row, self.col_of(row, p.lon.0))
    }

    /// Every cell that may hold a point within `radius_m` (haversine) of `p`,
    /// sorted and without repeats. A superset: the caller filters by distance.
    /// A negative or NaN radius gives no cells.
    pub fn cells_within(&self, p: Point, radius_m: f64) -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        if radius_m.is_nan() || radius_m < 0.0 {
            return out;
        }
        let delta = widen(radius_m / EARTH_RADIUS_M);
        let phi = p.lat.0.to_radians().clamp(-FRAC_PI_2, FRAC_PI_2);
        let lo_row = self.row_of((phi - delta).to_degrees());
        let hi_row = self.row_of((phi + delta).to_degrees());
        // Longitude half-width of the cap's bounding box; None = every longitude.
        let half_lon_deg = if phi.abs() + delta >= FRAC_PI_2 || delta >= FRAC_PI_2 {
            None
        } else {
            // Both sides rounded outwards: the cap holds no pole, so the ratio is < 1.
            let ratio = (delta.sin() / phi.cos()) * (1.0 + 1e-12);
            if ratio >= 1.0 {
                None
            } else {
                Some(ratio.asin().to_degrees())
            }
        };
        for row in lo_row..=hi_row {
            let n = self.cols_in_row(row);
            match half_lon_deg {
                Some(half) if 2.0 * half < 360.0 => {
                    let lon = normalize_lon(p.lon.0);
                    let (west, east) = (lon - half, lon + half);
                    let (a, b) = (self.col_of(row, west), self.col_of(row, east));
                    let wraps = west < -180.0 || east >= 180.0;
                    if !wraps && a <= b {
                        out.extend((a..=b).map(|c| (row, c)));
                    } else if wraps && a > b {
                        out.extend((0..=b).map(|c| (row, c)));
                        out.extend((a..n).map(|c| (row, c)));
                    } else {
                        out.extend((0..n).map(|c| (row, c)));
                    }
                }
                _ => out.extend((0..n).map(|c| (row, c))),
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn row_of(&self, lat_deg: f64) -> i32 {
        let lat = lat_deg.clamp(-90.0, 90.0);
        (((lat + 90.0) / self.step_deg).floor() as i32).clamp(0, self.rows - 1)
    }

    /// Columns of a row: as many as keep a cell `cell_m` wide on its poleward edge.
    fn cols_in_row(&self, row: i32) -> i32 {
        let south = -90.0 + row as f64 * self.step_deg;
        let north = (south + self.step_deg).min(90.0);
        let poleward = south.abs().max(north.abs()).min(90.0);
        let width = 360.0 * poleward.to_radians().cos().max(0.0);
        ((width / self.step_deg).floor() as i32).max(1)
    }

    fn col_of(&self, row: i32, lon_deg: f64) -> i32 {
        let n = self.cols_in_row(row);
        let x = (lon_deg + 180.0).rem_euclid(360.0);
        ((x * n as f64 / 360.0).floor() as i32).clamp(0, n - 1)
    }
}

/// Longitude in [-180, 180).
fn normalize_lon(lon_deg: f64) -> f64 {
    (lon_deg + 180.0).rem_euclid(360.0) - 180.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// The point `d` metres from `p` on initial bearing `bearing` (radians).
    fn destination(p: Point, bearing: f64, d: f64) -> Point {
        let (phi1, lambda1) = (p.lat.0.to_radians(), p.lon.0.to_radians());
        let a = d / EARTH_RADIUS_M;
        let phi2 = (phi1.sin() * a.cos() + phi1.cos() * a.sin() * bearing.cos()).asin();
        let lambda2 = lambda1
            + (bearing.sin() * a.sin() * phi1.cos()).atan2(a.cos() - phi1.sin() * phi2.sin());
        Point::new(phi2.to_degrees(), lambda2.to_degrees())
    }

    #[test]
    fn haversine_hand_values() {
        let a = Point::new(50.0, 8.0);
        assert_eq!(haversine_m(a, a), 0.0);
        // One degree along a meridian is R·π/180.
        let one_deg = EARTH_RADIUS_M * PI / 180.0;
        assert!(close(
            haversine_m(Point::new(0.0, 0.0), Point::new(1.0, 0.0)),
            one_deg,
            1e-6
        ));
        // One degree of longitude at 60° is half as long, as a chord of the small circle
        // (the great circle is slightly shorter than the parallel).
        let d = haversine_m(Point::new(60.0, 0.0), Point::new(60.0, 1.0));
        assert!(d < one_deg / 2.0 && d > one_deg / 2.0 - 1.0, "{d}");
        // Symmetric, and the antimeridian is not a wall.
        let (p, q) = (Point::new(10.0, 179.9), Point::new(10.0, -179.9));
        assert_eq!(haversine_m(p, q), haversine_m(q, p));
        assert!(close(
            haversine_m(p, q),
            haversine_m(Point::new(10.0, 0.0), Point::new(10.0, 0.2)),
            1e-6
        ));
        // Antipodes: half the circumference, no NaN.
        assert!(close(
            haversine_m(Point::new(0.0, 0.0), Point::new(0.0, 180.0)),
            PI * EARTH_RADIUS_M,
            1e-6
        ));
    }

    #[test]
    fn haversine_matches_conformance_rows() {
        // promotions.csv of the conformance suite (haversine_m column), coordinates
        // copied from its towers.csv and stores.csv.
        let cases = [
            // tower 262-01-1003-34854 → S51
            ((53.61712, 13.697043), (53.598886, 13.715174), 2354),
            // tower 262-01-1001-37690 → S19
            ((53.240799, 8.472491), (53.242286, 8.424036), 3229),
            // tower 262-01-1001-55479 → S28
            ((53.236282, 8.416536), (53.235136, 8.417247), 136),
        ];
        for ((a, b), (c, d), want) in cases {
            assert_eq!(
                round_half_up(haversine_m(Point::new(a, b), Point::new(c, d))),
                want
            );
        }
        // Python's math module gives 2943.569633848204 m for this pair.
        let d = haversine_m(
            Point::new(50.973952, 8.201049),
            Point::new(50.970654, 8.242761),
        );
        assert!(close(d, 2943.569633848204, 1e-6), "{d}");
    }

    #[test]
    fn round_half_up_cases() {
        assert_eq!(round_half_up(0.0), 0);
        assert_eq!(round_half_up(2.5), 3);
        assert_eq!(round_half_up(2.4999999), 2);
        assert_eq!(round_half_up(3014.5), 3015);
        assert_eq!(round_half_up(0.49999999999999994), 0);
        assert_eq!(round_half_up(-2.5), -2);
        assert_eq!(round_half_up(-2.6), -3);
        assert_eq!(round_half_up(4503599627370495.5), 4503599627370496);
    }

    #[test]
    fn cells_are_roughly_square() {
        let g = Grid::new(5000.0);
        assert_eq!(g.cell_m(), 5000.0);
        // A cell is at least 5 km wide at its poleward edge, and not much more than
        // that at mid latitudes.
        for lat in [-89.0, -60.0, -10.0, 0.0, 10.0, 48.1, 53.6, 70.0, 85.0] {
            let (row, _) = g.cell_of(Point::new(lat, 0.0));
            let n = g.cols_in_row(row);
            let width_deg = 360.0 / n as f64;
            let south = -90.0 + row as f64 * g.step_deg;
            let north = (south + g.step_deg).min(90.0);
            let poleward = south.abs().max(north.abs());
            let width_m = EARTH_RADIUS_M * width_deg.to_radians() * poleward.to_radians().cos();
            assert!(width_m >= 5000.0 * (1.0 - 1e-9), "lat {lat}: {width_m}");
            if lat.abs() < 80.0 {
                assert!(width_m < 5100.0, "lat {lat}: {width_m}");
            }
        }
        // Rows at the poles are one cell each.
        assert_eq!(g.cols_in_row(0), 1);
        assert_eq!(g.cols_in_row(g.rows - 1), 1);
    }

    #[test]
    fn cells_within_is_small_for_radius_equal_to_cell() {
        let g = Grid::new(5000.0);
        let mut worst = 0;
        for i in 0..=1800 {
            let lat = -90.0 + i as f64 * 0.1;
            for lon in [-180.0, -179.99, -3.3, 0.0, 8.2, 179.99] {
                let n = g.cells_within(Point::new(lat, lon), 5000.0).len();
                if lat.abs() < 89.0 {
                    worst = worst.max(n);
                }
                // Even at a pole the cap meets only a few small rows.
                assert!(n <= 40, "lat {lat} lon {lon}: {n} cells");
            }
        }
        assert!(worst <= 16, "{worst} cells");
        // At German latitudes: 3 rows of 3–4 columns.
        assert!(g.cells_within(Point::new(50.97, 8.2), 5000.0).len() <= 12);
    }

    #[test]
    fn cells_within_edge_cases() {
        let g = Grid::new(1000.0);
        let p = Point::new(48.1, 11.5);
        assert!(g.cells_within(p, -1.0).is_empty());
        assert!(g.cells_within(p, f64::NAN).is_empty());
        assert!(g.cells_within(p, 0.0).contains(&g.cell_of(p)));
        // Sorted, no repeats.
        let cells = g.cells_within(Point::new(0.0, 179.999), 3000.0);
        assert!(cells.windows(2).all(|w| w[0] < w[1]));
        // Across the antimeridian: both the east and the west end.
        assert!(cells.contains(&g.cell_of(Point::new(0.0, -179.99))));
        assert!(cells.contains(&g.cell_of(Point::new(0.0, 179.99))));
        // Longitudes outside [-180, 180) are taken modulo 360°.
        assert_eq!(
            g.cell_of(Point::new(10.0, 190.0)),
            g.cell_of(Point::new(10.0, -170.0))
        );
        assert_eq!(
            g.cell_of(Point::new(10.0, 180.0)),
            g.cell_of(Point::new(10.0, -180.0))
        );
        // A radius of half the circumference covers every cell.
        let everything = Grid::new(2_000_000.0);
        let all = everything.cells_within(p, PI * EARTH_RADIUS_M);
        let total: i32 = (0..everything.rows)
            .map(|r| everything.cols_in_row(r))
            .sum();
        assert_eq!(all.len(), total as usize);
        // Grid sizes are clamped, never panic.
        assert_eq!(Grid::new(0.0).cell_m(), 1.0);
        assert_eq!(Grid::new(f64::NAN).cell_m(), 1.0);
        assert_eq!(Grid::new(1e12).rows, 1);
    }

    /// Latitudes and longitudes with extra weight on poles and the antimeridian.
    fn lat() -> impl Strategy<Value = f64> {
        prop_oneof![
            -90.0..=90.0f64,
            (0.0..0.5f64).prop_map(|d| 90.0 - d),
            (0.0..0.5f64).prop_map(|d| -90.0 + d),
            Just(90.0),
            Just(-90.0),
            Just(0.0),
        ]
    }

    fn lon() -> impl Strategy<Value = f64> {
        prop_oneof![
            -180.0..180.0f64,
            (0.0..0.5f64).prop_map(|d| 180.0 - d),
            (0.0..0.5f64).prop_map(|d| -180.0 + d),
            Just(-180.0),
            Just(180.0),
        ]
    }

    /// A radius as a multiple of the cell size (the query cost grows with its square).
    fn cells_across() -> impl Strategy<Value = f64> {
        prop_oneof![0.0..0.01f64, 0.0..2.0f64, 2.0..40.0f64]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Never miss a point: any q within r of p lies in one of p's cells.
        #[test]
        fn cells_within_never_misses(
            lat in lat(), lon in lon(), cell_m in prop_oneof![1.0..100.0f64, 100.0..2_000_000.0f64],
            across in cells_across(), frac in 0.0..=1.0f64, bearing in 0.0..(2.0 * PI),
        ) {
            let grid = Grid::new(cell_m);
            let r = across * cell_m;
            let p = Point::new(lat, lon);
            let q = destination(p, bearing, r * frac);
            // Also the boundary itself, and a point exactly at p.
            for q in [q, destination(p, bearing, r), p] {
                if haversine_m(p, q) <= r {
                    let cells = grid.cells_within(p, r);
                    prop_assert!(cells.contains(&grid.cell_of(q)),
                        "p={:?} q={:?} r={} cell_m={} d={}", p, q, r, cell_m, haversine_m(p, q));
                }
            }
        }

        /// Radius of one cell: a handful of cells away from the poles.
        #[test]
        fn cells_within_stays_small(lat in -85.0..85.0f64, lon in lon(), cell_m in 10.0..100_000.0f64) {
            let grid = Grid::new(cell_m);
            let n = grid.cells_within(Point::new(lat, lon), cell_m).len();
            prop_assert!(n <= 16, "{n} cells at lat {lat}");
        }
    }
}
