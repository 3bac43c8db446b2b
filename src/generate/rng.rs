//! Counter-based randomness: every record is a pure function of
//! `(seed, stream, index)`.
//!
//! `Rng::at(seed, stream, index)` hashes the triple with SplitMix64 into the
//! state of a wyrand generator, so any worker can produce record `index`
//! without having seen the records before it (STYLE habit 9). The generator is
//! written out here, not taken from `rand`, so that the bytes of a dataset do
//! not change when a dependency changes its algorithms.

/// Independent random streams: one per kind of record.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Stream {
    City = 1,
    Tower,
    Store,
    Road,
    Subscriber,
    Loyalty,
    Contact,
    CdrCategory,
    Cdr,
    Product,
    Basket,
    Weather,
    Change,
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
pub(crate) const fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit hash of `(seed, stream, index)`.
pub(crate) fn hash(seed: u64, stream: Stream, index: u64) -> u64 {
    let key = splitmix(seed ^ (stream as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    splitmix(key ^ index)
}

/// A uniform number in `[0, 1)` from a hash: cheap draws that need no `Rng`.
pub(crate) fn unit_of(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// wyrand: one 64-bit word of state, passes BigCrush, a multiply per draw.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The generator of record `index` of `stream`.
    pub(crate) fn at(seed: u64, stream: Stream, index: u64) -> Self {
        Rng {
            state: hash(seed, stream, index),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xE703_7ED1_A0B4_28DB);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; `n = 0` gives 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n`.
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        unit_of(self.next_u64())
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform real in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Approximately standard normal (Irwin–Hall sum of four uniforms,
    /// rescaled): bounded to ±3.46, which suits synthetic data.
    pub(crate) fn normal(&mut self) -> f64 {
        let s = self.unit() + self.unit() + self.unit() + self.unit();
        (s - 2.0) * 3f64.sqrt()
    }

    /// `exp(mu + sigma · normal)`.
    pub(crate) fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }

    /// An index drawn with probability proportional to `weights[i]`.
    pub(crate) fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_triple_same_draws_and_streams_differ() {
        let mut a = Rng::at(7, Stream::Cdr, 42);
        let mut b = Rng::at(7, Stream::Cdr, 42);
        let mut c = Rng::at(7, Stream::Basket, 42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn draws_stay_in_range_and_look_uniform() {
        let mut r = Rng::at(1, Stream::Cdr, 0);
        let mut hist = [0u32; 10];
        for _ in 0..100_000 {
            let x = r.below(10);
            hist[x as usize] += 1;
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let k = r.range(-3, 3);
            assert!((-3..=3).contains(&k));
        }
        for h in hist {
            assert!((9_000..11_000).contains(&h), "{hist:?}");
        }
    }
}
