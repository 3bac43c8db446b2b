//! The dataset's tables (SPEC §1) read into typed rows, and the two change
//! files. Every rejected row is a dead letter; the caller decides what to do with
//! the rows (they become dataflow inputs).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use cdrflow_dataflows::basket::{Catalogue, PurchaseRow};
use cdrflow_dataflows::model::{
    Change, DeadLetter, Epoch, Loyalty, Point, Reason, Store, Subscriber, Text, Tower,
};

use super::changes::{ChangeTail, Changes};
use super::csv_table::{field, read_csv, Row, SourceError, Table};

#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub product_id: String,
    pub category: String,
    pub price_cents: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Weather {
    pub region: String,
    /// Midnight (UTC) of the row's date.
    pub date: Epoch,
    pub condition: String,
}

#[derive(Clone, Debug)]
pub struct RoadNode {
    pub node_id: String,
    pub at: Point,
}

#[derive(Clone, Debug)]
pub struct RoadEdge {
    pub from: String,
    pub to: String,
    pub length_m: f64,
}

/// Every table of a dataset directory, validated.
#[derive(Default)]
pub struct Tables {
    pub towers: Vec<Tower>,
    pub stores: Vec<Store>,
    pub loyalty: Vec<Loyalty>,
    pub products: Vec<Product>,
    /// The valid products, sorted: the [`ProductId`]s of the dataflows.
    pub catalogue: Catalogue,
    /// `purchases.csv` as dataflow rows, sharing strings: one allocation per
    /// distinct customer and store, one per transaction (its rows are
    /// usually adjacent). `quantity` and `amount_cents` are validated and
    /// dropped (SPEC §4 counts baskets, not amounts).
    pub purchases: Vec<PurchaseRow>,
    pub weather: Vec<Weather>,
    pub subscribers: Vec<Subscriber>,
    pub nodes: Vec<RoadNode>,
    pub edges: Vec<RoadEdge>,
    pub loyalty_changes: Vec<Change<String, Loyalty>>,
    pub store_changes: Vec<Change<String, Store>>,
    /// Where the change files were read to (a `--follow` run reads on).
    pub loyalty_tail: Option<ChangeTail>,
    pub store_tail: Option<ChangeTail>,
    /// Rejected rows of every file, in file order.
    pub dead: Vec<DeadLetter>,
    /// Rejected rows per file (dataset path → count), every file listed.
    pub dead_per_file: BTreeMap<String, u64>,
}

impl Tables {
    /// The valid purchase rows as dataflow records (products as catalogue ids;
    /// a row with an unknown product was dead-lettered when read).
    fn take<T>(&mut self, rel: &str, table: Table<T>) -> Vec<T> {
        *self.dead_per_file.entry(rel.to_string()).or_default() += table.dead.len() as u64;
        self.dead.extend(table.dead);
        table.rows.into_iter().map(|(_, v)| v).collect()
    }

    /// The road graph's edges name nodes that must exist: an edge naming an
    /// unknown node is dead-lettered as `bad_value:from_node`/`to_node`. Called
    /// by [`load`] after both files are read.
    fn check_edges(&mut self, edge_lines: Vec<(u64, RoadEdge)>, edge_raw: Vec<String>) {
        let known: BTreeSet<&str> = self.nodes.iter().map(|n| n.node_id.as_str()).collect();
        let mut kept = Vec::with_capacity(edge_lines.len());
        let rel = "roads/edges.csv";
        for ((line, e), raw) in edge_lines.into_iter().zip(edge_raw) {
            let reason = if !known.contains(e.from.as_str()) {
                Some("from_node")
            } else if !known.contains(e.to.as_str()) {
                Some("to_node")
            } else {
                None
            };
            match reason {
                Some(col) => {
                    *self.dead_per_file.entry(rel.into()).or_default() += 1;
                    self.dead.push(DeadLetter {
                        source: rel.into(),
                        line,
                        reason: Reason::BadValue(col.into()),
                        raw,
                    });
                }
                None => kept.push(e),
            }
        }
        self.edges = kept;
    }
}

/// The columns of `loyalty.csv` in the order [`loyalty_row`] reads them.
pub(crate) const LOYALTY_COLUMNS: [&str; 7] = [
    "customer_id",
    "msisdn",
    "loyalty_points",
    "opt_in",
    "gender",
    "birth_year",
    "region",
];
const STORE_COLUMNS: [&str; 5] = ["store_id", "name", "lat", "lon", "region"];

/// Reads every table of `dir`. Missing required files or columns are errors;
/// bad rows are dead letters in [`Tables::dead`].
pub fn load(dir: &Path) -> Result<Tables, SourceError> {
    let mut t = Tables::default();

    // A key seen again in a static table is `bad_value:<key>`; the first row wins.
    let mut seen = BTreeSet::new();
    let towers = read_csv(dir, "towers.csv", &["cell_id", "lat", "lon"], |r| {
        let tower = Tower {
            cell_id: field::required(r.get(0), "cell_id")?.into(),
            at: point(r, 1, 2)?,
        };
        first_of_key(&mut seen, &tower.cell_id.to_string(), "cell_id")?;
        Ok(tower)
    })?;
    t.towers = t.take("towers.csv", towers);

    let stores = read_csv(dir, "stores.csv", &STORE_COLUMNS, |r| {
        Ok(Store {
            store_id: field::required(r.get(0), "store_id")?.into(),
            name: field::required(r.get(1), "name")?.into(),
            at: point(r, 2, 3)?,
            region: field::required(r.get(4), "region")?.into(),
        })
    })?;
    t.stores = t.take("stores.csv", stores);

    let loyalty = read_csv(dir, "loyalty.csv", &LOYALTY_COLUMNS, |r| {
        loyalty_row(&|i| r.get(i))
    })?;
    t.loyalty = t.take("loyalty.csv", loyalty);

    let mut seen = BTreeSet::new();
    let products = read_csv(
        dir,
        "products.csv",
        &["product_id", "name", "category", "price_cents"],
        |r| {
            let product_id = field::required(r.get(0), "product_id")?;
            field::required(r.get(1), "name")?;
            first_of_key(&mut seen, product_id, "product_id")?;
            Ok(Product {
                product_id: product_id.into(),
                category: field::required(r.get(2), "category")?.into(),
                price_cents: field::count(r.get(3), "price_cents")?,
            })
        },
    )?;
    t.products = t.take("products.csv", products);
    t.catalogue = Catalogue::new(t.products.iter().map(|p| p.product_id.as_str()));
    let catalogue = t.catalogue.clone();
    let mut shared: HashMap<String, Text> = HashMap::new();
    let mut last_txn: Option<Text> = None;
    let purchases = read_csv(
        dir,
        "purchases.csv",
        &[
            "txn_id",
            "customer_id",
            "store_id",
            "ts",
            "product_id",
            "quantity",
            "amount_cents",
        ],
        |r| {
            let txn_id = field::required(r.get(0), "txn_id")?;
            let customer_id = field::required(r.get(1), "customer_id")?;
            let store_id = field::required(r.get(2), "store_id")?;
            let ts_text = field::required(r.get(3), "ts")?;
            let product_id = field::required(r.get(4), "product_id")?;
            let quantity_text = field::required(r.get(5), "quantity")?;
            let amount_text = field::required(r.get(6), "amount_cents")?;
            let ts = field::int(ts_text, "ts")?;
            let product = catalogue
                .id(product_id)
                .ok_or_else(|| Reason::BadValue("product_id".into()))?;
            field::count(quantity_text, "quantity")?;
            field::int(amount_text, "amount_cents")?;
            let txn_id = match &last_txn {
                Some(t) if &**t == txn_id => t.clone(),
                _ => {
                    let t = Text::from(txn_id);
                    last_txn = Some(t.clone());
                    t
                }
            };
            let mut share = |s: &str| match shared.get(s) {
                Some(t) => t.clone(),
                None => shared
                    .entry(s.to_string())
                    .or_insert_with(|| s.into())
                    .clone(),
            };
            Ok(PurchaseRow {
                txn_id,
                customer_id: share(customer_id),
                store_id: share(store_id),
                ts,
                product,
            })
        },
    )?;
    t.purchases = t.take("purchases.csv", purchases);

    let mut seen = BTreeSet::new();
    let weather = read_csv(
        dir,
        "weather.csv",
        &["region", "date", "condition", "temp_c"],
        |r| {
            let region = field::required(r.get(0), "region")?.to_string();
            let date = cdrflow_dataflows::time::parse_date(field::required(r.get(1), "date")?)
                .ok_or_else(|| Reason::BadValue("date".into()))?;
            let condition = field::required(r.get(2), "condition")?;
            if !condition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(Reason::BadValue("condition".into()));
            }
            field::float(r.get(3), "temp_c")?;
            // One condition per (region, date): a repeated pair is
            // `bad_value:date` and the first row wins.
            first_of_key(&mut seen, &format!("{region}\u{0}{date}"), "date")?;
            Ok(Weather {
                region,
                date,
                condition: condition.into(),
            })
        },
    )?;
    t.weather = t.take("weather.csv", weather);

    let mut seen = BTreeSet::new();
    let subscribers = read_csv(
        dir,
        "subscribers.csv",
        &[
            "msisdn",
            "gender",
            "birth_year",
            "plan",
            "monthly_fee_cents",
        ],
        |r| {
            let msisdn = field::msisdn(r.get(0), "msisdn")?;
            // One row per (normalised) number: a repeat is `bad_value:msisdn`.
            first_of_key(&mut seen, &msisdn, "msisdn")?;
            let birth_year = field::optional_year(r.get(2), "birth_year")?;
            let fee = r.get(4);
            let monthly_fee_cents = if fee.is_empty() {
                0
            } else {
                field::count(fee, "monthly_fee_cents")?
            };
            Ok(Subscriber {
                msisdn,
                gender: r.get(1).into(),
                birth_year,
                plan: r.get(3).into(),
                monthly_fee_cents,
            })
        },
    )?;
    t.subscribers = t.take("subscribers.csv", subscribers);

    let mut seen = BTreeSet::new();
    let nodes = read_csv(dir, "roads/nodes.csv", &["node_id", "lat", "lon"], |r| {
        let node = RoadNode {
            node_id: field::required(r.get(0), "node_id")?.into(),
            at: point(r, 1, 2)?,
        };
        first_of_key(&mut seen, &node.node_id, "node_id")?;
        Ok(node)
    })?;
    t.nodes = t.take("roads/nodes.csv", nodes);

    let mut raws = Vec::new();
    let edges = read_csv(
        dir,
        "roads/edges.csv",
        &["from_node", "to_node", "length_m"],
        |r| {
            let from = field::required(r.get(0), "from_node")?.to_string();
            let to = field::required(r.get(1), "to_node")?.to_string();
            let length_m = field::float(r.get(2), "length_m")?;
            if length_m < 0.0 {
                return Err(Reason::BadValue("length_m".into()));
            }
            raws.push(format!("{},{},{}", r.get(0), r.get(1), r.get(2)));
            Ok(RoadEdge { from, to, length_m })
        },
    )?;
    *t.dead_per_file.entry("roads/edges.csv".into()).or_default() += edges.dead.len() as u64;
    t.dead.extend(edges.dead);
    t.check_edges(edges.rows, raws);

    let mut tail = ChangeTail::new(dir, "loyalty_changes.jsonl");
    let (changes, dead) =
        read_loyalty_changes(&mut tail, false).map_err(|source| SourceError::Io {
            path: dir.join("loyalty_changes.jsonl"),
            source,
        })?;
    t.loyalty_changes = changes;
    t.loyalty_tail = Some(tail);
    *t.dead_per_file
        .entry("loyalty_changes.jsonl".into())
        .or_default() += dead.len() as u64;
    t.dead.extend(dead);

    let mut tail = ChangeTail::new(dir, "stores_changes.jsonl");
    let (changes, dead) =
        read_store_changes(&mut tail, false).map_err(|source| SourceError::Io {
            path: dir.join("stores_changes.jsonl"),
            source,
        })?;
    t.store_changes = changes;
    t.store_tail = Some(tail);
    *t.dead_per_file
        .entry("stores_changes.jsonl".into())
        .or_default() += dead.len() as u64;
    t.dead.extend(dead);

    Ok(t)
}

/// The next lines of `loyalty_changes.jsonl` (see [`ChangeTail::read`]).
pub fn read_loyalty_changes(
    tail: &mut ChangeTail,
    complete_only: bool,
) -> std::io::Result<Changes<Loyalty>> {
    tail.read(&LOYALTY_COLUMNS, loyalty_row, complete_only)
}

/// The next lines of `stores_changes.jsonl` (see [`ChangeTail::read`]).
pub fn read_store_changes(
    tail: &mut ChangeTail,
    complete_only: bool,
) -> std::io::Result<Changes<Store>> {
    tail.read(
        &STORE_COLUMNS,
        |get| {
            Ok(Store {
                store_id: field::required(get(0), "store_id")?.into(),
                name: field::required(get(1), "name")?.into(),
                at: Point::new(field::lat(get(2), "lat")?, field::lon(get(3), "lon")?),
                region: field::required(get(4), "region")?.into(),
            })
        },
        complete_only,
    )
}

fn first_of_key(seen: &mut BTreeSet<String>, key: &str, column: &str) -> Result<(), Reason> {
    if seen.insert(key.to_string()) {
        Ok(())
    } else {
        Err(Reason::BadValue(column.into()))
    }
}

fn point(r: &Row, lat: usize, lon: usize) -> Result<Point, Reason> {
    Ok(Point::new(
        field::lat(r.get(lat), "lat")?,
        field::lon(r.get(lon), "lon")?,
    ))
}

/// A loyalty row from its columns in the order customer_id, msisdn,
/// loyalty_points, opt_in, gender, birth_year, region.
pub(crate) fn loyalty_row<'a>(get: &dyn Fn(usize) -> &'a str) -> Result<Loyalty, Reason> {
    Ok(Loyalty {
        customer_id: field::required(get(0), "customer_id")?.into(),
        msisdn: field::msisdn(get(1), "msisdn")?,
        loyalty_points: field::int(get(2), "loyalty_points")?,
        opt_in: field::boolean(get(3), "opt_in")?,
        gender: get(4).into(),
        birth_year: field::optional_year(get(5), "birth_year")?,
        region: field::required(get(6), "region")?.into(),
    })
}
