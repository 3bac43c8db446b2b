//! The lookup service's in-memory store (SPEC §5): one [`Snapshot`] — every
//! subscriber's segments and features as of one date, the latest promotion
//! per token and the loyalty customers per normalised msisdn — held by a
//! [`Store`] behind an [`ArcSwap`].
//!
//! ```text
//! run output dir ─ load::from_dir ─┐
//!                                  ├▶ SnapshotBuilder ─build▶ Snapshot ─publish▶ Store ◀─current─ requests
//! dataflow rows ─ Snapshot::from_rows
//! ```
//!
//! A request takes the current snapshot with one atomic load (no lock, never
//! blocked by a publisher) and answers from it alone; [`Store::publish`]
//! swaps in a whole new snapshot, so no reader sees half an update. The old
//! snapshot is freed when its last reader lets go of it.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use cdrflow_dataflows::model::{Epoch, Loyalty};
use cdrflow_dataflows::phone::normalize_msisdn;
use cdrflow_dataflows::time::format_rfc3339;

use super::rows::{FeatureValue, LoyaltySummary, PromotionRow, RowError, SubscriberRow, TokenKey};

const DAY: Epoch = 86_400;

/// A subscriber's entry: segment ids (sorted by name once built) and features.
struct Entry {
    segments: Box<[u32]>,
    features: Box<[FeatureValue]>,
}

/// Everything the service answers from, as of one snapshot date: three
/// parts, each shared (`Arc`), so a live run replaces one part (a new day's
/// subscribers, the promotions view, the loyalty table) without copying the
/// others, and a reader still sees one consistent whole.
#[derive(Clone)]
pub struct Snapshot {
    segments: Arc<SegmentTable>,
    promotions: Arc<HashMap<TokenKey, PromotionRow>>,
    /// Loyalty customers by normalised msisdn, sorted by customer_id.
    loyalty: Arc<HashMap<String, Vec<LoyaltySummary>>>,
}

/// One date's subscribers: their segments and features.
#[derive(Default)]
struct SegmentTable {
    /// The snapshot date's midnight; `None` before the first snapshot.
    date: Option<Epoch>,
    /// RFC 3339 `as_of` (the midnight after `date`), empty without a date.
    as_of: String,
    feature_names: Box<[Box<str>]>,
    /// Every segment name, sorted; entries hold indices into it.
    segment_names: Box<[Box<str>]>,
    subscribers: HashMap<TokenKey, Entry>,
}

/// A subscriber as stored in a [`Snapshot`].
#[derive(Clone, Copy)]
pub struct SubscriberView<'a> {
    snapshot: &'a Snapshot,
    entry: &'a Entry,
}

impl<'a> SubscriberView<'a> {
    /// Segment names, sorted.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = &self.snapshot.segments.segment_names;
        self.entry
            .segments
            .iter()
            .map(move |&i| &*names[i as usize])
    }

    /// `(name, value)` in the snapshot's feature order.
    pub fn features(&self) -> impl Iterator<Item = (&'a str, FeatureValue)> + 'a {
        let names = self.snapshot.segments.feature_names.iter().map(|n| &**n);
        names.zip(self.entry.features.iter().copied())
    }
}

impl Snapshot {
    /// A snapshot without subscribers, promotions or loyalty customers (what
    /// a live run serves before its first day closes).
    pub fn empty() -> Snapshot {
        Snapshot {
            segments: Arc::default(),
            promotions: Arc::default(),
            loyalty: Arc::default(),
        }
    }

    /// A snapshot from in-memory rows: `date` is the snapshot date's midnight
    /// (`as_of` is the next one); `feature_names` name the values of every
    /// [`SubscriberRow`]. Loyalty msisdns are normalised here (SPEC §1); a
    /// row that does not normalise is an error, as is a repeated token.
    pub fn from_rows<'l>(
        date: Epoch,
        feature_names: Vec<String>,
        subscribers: impl IntoIterator<Item = SubscriberRow>,
        promotions: impl IntoIterator<Item = PromotionRow>,
        loyalty: impl IntoIterator<Item = &'l Loyalty>,
    ) -> Result<Snapshot, RowError> {
        Snapshot::empty()
            .with_subscribers(date, feature_names, subscribers)?
            .with_promotions(promotions)?
            .with_loyalty(loyalty)
    }

    /// This snapshot with the subscribers of another date (promotions and
    /// loyalty shared, not copied).
    pub fn with_subscribers(
        &self,
        date: Epoch,
        feature_names: Vec<String>,
        subscribers: impl IntoIterator<Item = SubscriberRow>,
    ) -> Result<Snapshot, RowError> {
        let mut b = SnapshotBuilder::new(date, feature_names);
        for row in subscribers {
            let key = b.subscriber(&row.token, row.features)?;
            for s in &row.segments {
                b.segment_of(key, s)?;
            }
        }
        Ok(Snapshot {
            segments: b.build().segments,
            ..self.clone()
        })
    }

    /// This snapshot with another promotions view (the latest row per token
    /// is kept, see [`SnapshotBuilder::promotion`]).
    pub fn with_promotions(
        &self,
        promotions: impl IntoIterator<Item = PromotionRow>,
    ) -> Result<Snapshot, RowError> {
        let mut b = SnapshotBuilder::new(0, Vec::new());
        for p in promotions {
            b.promotion(p)?;
        }
        Ok(Snapshot {
            promotions: b.build().promotions,
            ..self.clone()
        })
    }

    /// This snapshot with another loyalty table.
    pub fn with_loyalty<'l>(
        &self,
        loyalty: impl IntoIterator<Item = &'l Loyalty>,
    ) -> Result<Snapshot, RowError> {
        let mut b = SnapshotBuilder::new(0, Vec::new());
        for l in loyalty {
            b.loyalty(&l.msisdn, l.into())?;
        }
        Ok(Snapshot {
            loyalty: b.build().loyalty,
            ..self.clone()
        })
    }

    /// The snapshot date's midnight (epoch seconds); `None` before the first.
    pub fn date(&self) -> Option<Epoch> {
        self.segments.date
    }

    /// RFC 3339 `as_of`: the midnight after the snapshot date (empty before
    /// the first snapshot).
    pub fn as_of(&self) -> &str {
        &self.segments.as_of
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.segments.subscribers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.subscribers.is_empty()
    }

    /// Number of tokens with a promotion.
    pub fn promoted(&self) -> usize {
        self.promotions.len()
    }

    pub fn subscriber(&self, token: TokenKey) -> Option<SubscriberView<'_>> {
        let entry = self.segments.subscribers.get(&token)?;
        Some(SubscriberView {
            snapshot: self,
            entry,
        })
    }

    /// The promotion of `token` with the greatest `(date, start)`.
    pub fn latest_promotion(&self, token: TokenKey) -> Option<&PromotionRow> {
        self.promotions.get(&token)
    }

    /// The loyalty customers of a normalised msisdn, sorted by customer_id.
    pub fn loyalty(&self, msisdn: &str) -> &[LoyaltySummary] {
        self.loyalty.get(msisdn).map_or(&[], Vec::as_slice)
    }
}

/// Builds a [`Snapshot`] row by row (the file loader and [`Snapshot::from_rows`]).
pub struct SnapshotBuilder {
    date: Epoch,
    feature_names: Vec<String>,
    segment_ids: HashMap<Box<str>, u32>,
    segment_names: Vec<Box<str>>,
    subscribers: HashMap<TokenKey, (Vec<u32>, Box<[FeatureValue]>)>,
    promotions: HashMap<TokenKey, PromotionRow>,
    loyalty: HashMap<String, Vec<LoyaltySummary>>,
}

impl SnapshotBuilder {
    /// An empty snapshot of `date` (midnight) with these feature names.
    pub fn new(date: Epoch, feature_names: Vec<String>) -> Self {
        SnapshotBuilder {
            date,
            feature_names,
            segment_ids: HashMap::new(),
            segment_names: Vec::new(),
            subscribers: HashMap::new(),
            promotions: HashMap::new(),
            loyalty: HashMap::new(),
        }
    }

    /// Adds a subscriber with its features (one per feature name).
    pub fn subscriber(
        &mut self,
        token: &str,
        features: Vec<FeatureValue>,
    ) -> Result<TokenKey, RowError> {
        let key = TokenKey::parse(token).ok_or(RowError::BadToken)?;
        if features.len() != self.feature_names.len() {
            return Err(RowError::FeatureCount {
                got: features.len(),
                want: self.feature_names.len(),
            });
        }
        if self.subscribers.contains_key(&key) {
            return Err(RowError::DuplicateToken(key));
        }
        self.subscribers
            .insert(key, (Vec::new(), features.into_boxed_slice()));
        Ok(key)
    }

    /// Adds a segment to a subscriber already added (a repeat is kept once).
    pub fn segment(&mut self, token: &str, segment: &str) -> Result<(), RowError> {
        let key = TokenKey::parse(token).ok_or(RowError::BadToken)?;
        self.segment_of(key, segment)
    }

    fn segment_of(&mut self, key: TokenKey, segment: &str) -> Result<(), RowError> {
        let (segments, _) = self
            .subscribers
            .get_mut(&key)
            .ok_or(RowError::UnknownToken(key))?;
        let id = match self.segment_ids.get(segment) {
            Some(&id) => id,
            None => {
                let id = self.segment_names.len() as u32;
                self.segment_names.push(segment.into());
                self.segment_ids.insert(segment.into(), id);
                id
            }
        };
        segments.push(id);
        Ok(())
    }

    /// Offers a promotion; the latest per token is kept (see `PromotionRow::rank`).
    pub fn promotion(&mut self, row: PromotionRow) -> Result<(), RowError> {
        let key = TokenKey::parse(&row.subscriber_token).ok_or(RowError::BadToken)?;
        match self.promotions.get(&key) {
            Some(kept) if kept.rank() >= row.rank() => {}
            _ => {
                self.promotions.insert(key, row);
            }
        }
        Ok(())
    }

    /// Adds a loyalty customer under its msisdn (normalised here). A repeated
    /// customer_id under the same msisdn is kept once (the first).
    pub fn loyalty(&mut self, msisdn: &str, summary: LoyaltySummary) -> Result<(), RowError> {
        let msisdn = normalize_msisdn(msisdn).ok_or(RowError::BadMsisdn)?;
        let list = self.loyalty.entry(msisdn).or_default();
        if !list.iter().any(|l| l.customer_id == summary.customer_id) {
            list.push(summary);
        }
        Ok(())
    }

    pub fn build(self) -> Snapshot {
        // Renumber segments in name order, so sorting ids sorts names.
        let mut order: Vec<u32> = (0..self.segment_names.len() as u32).collect();
        order.sort_by(|&a, &b| self.segment_names[a as usize].cmp(&self.segment_names[b as usize]));
        let mut rank = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let mut names = self.segment_names;
        let segment_names: Box<[Box<str>]> = order
            .iter()
            .map(|&old| std::mem::take(&mut names[old as usize]))
            .collect();
        let subscribers = self
            .subscribers
            .into_iter()
            .map(|(key, (mut segments, features))| {
                for s in &mut segments {
                    *s = rank[*s as usize];
                }
                segments.sort_unstable();
                segments.dedup();
                let segments = segments.into_boxed_slice();
                (key, Entry { segments, features })
            })
            .collect();
        let mut loyalty = self.loyalty;
        for list in loyalty.values_mut() {
            list.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        }
        Snapshot {
            segments: Arc::new(SegmentTable {
                date: Some(self.date),
                as_of: format_rfc3339(self.date + DAY),
                feature_names: self.feature_names.into_iter().map(Into::into).collect(),
                segment_names,
                subscribers,
            }),
            promotions: Arc::new(self.promotions),
            loyalty: Arc::new(loyalty),
        }
    }
}

/// The current snapshot, swapped whole by [`Store::publish`].
pub struct Store {
    current: ArcSwap<Snapshot>,
}

impl Store {
    pub fn new(snapshot: Snapshot) -> Self {
        Store {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The snapshot now: one atomic load, never blocked by a publisher.
    pub fn current(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Replaces the snapshot; the next [`Store::current`] sees the new one.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn builder_sorts_segments_and_keeps_the_latest_promotion() {
        let mut b = SnapshotBuilder::new(0, vec!["events".into()]);
        b.subscriber(T1, vec![FeatureValue::Int(3)]).unwrap();
        for s in ["plan:x", "age:18-24", "plan:x", "gender:F"] {
            b.segment(T1, s).unwrap();
        }
        let promo = |date, start, customer: &str| PromotionRow {
            date,
            customer_id: customer.into(),
            subscriber_token: T1.into(),
            record_id: "r".into(),
            start,
            cell_id: "c".into(),
            store_id: "s".into(),
            haversine_m: 1,
            drive_m: 2,
            product_id: None,
            source: None,
        };
        b.promotion(promo(DAY, DAY + 5, "a")).unwrap();
        b.promotion(promo(DAY, DAY + 9, "a")).unwrap();
        b.promotion(promo(0, 7, "z")).unwrap();
        assert_eq!(
            b.segment("ffffffffffffffffffffffffffffffff", "x"),
            Err(RowError::UnknownToken(
                TokenKey::parse(&"f".repeat(32)).unwrap()
            ))
        );
        let s = b.build();
        let key = TokenKey::parse(T1).unwrap();
        let v = s.subscriber(key).unwrap();
        assert_eq!(
            v.segments().collect::<Vec<_>>(),
            ["age:18-24", "gender:F", "plan:x"]
        );
        assert_eq!(s.latest_promotion(key).unwrap().start, DAY + 9);
        assert_eq!(s.as_of(), "1970-01-02T00:00:00Z");
    }
}
