//! cdrflow-dataflows: the pure parts of cdrflow. Differential fragments (free
//! functions over collections) and the algorithms they call. No I/O, no Kafka, no
//! CSV: sources and sinks live in the root crate.
//!
//! | module | owns |
//! |---|---|
//! | `model` | validated records, dead letters, reasons, the timestamp |
//! | `phone` | msisdn normalisation (SPEC §1) |
//! | `msisdn` | a normalised msisdn packed in an order-preserving `u64` |
//! | `cell` | a cell_id packed in an order-preserving `u128` (or its text) |
//! | `time` | RFC 3339, UTC dates, duration flags |
//! | `ingest` | the strict CDR line parser: bytes → `Result<Cdr, Reason>` (SPEC §2) |
//! | `expiry` | temporal filters: `expire` releases state, `freeze` makes rows final |
//! | `dedup` | dedup by record_id with the horizon (SPEC §2) |
//! | `loyalty` | the qualifying customer per msisdn (SPEC §3.1) |
//! | `spatial` | haversine, grid cells for the nearest-store join |
//! | `stores` | nearest store within the radius, a grid join (SPEC §3.2) |
//! | `route` | `Router` trait and the embedded road router (SPEC §3.3) |
//! | `drive_cache` | cache entries and router calls (SPEC §3.4) |
//! | `promotions` | the promotions view wired from the above (SPEC §3) |
//! | `basket` | market-basket rules, profiles and recommendations (SPEC §4) |
//! | `demographics` | gender codes and age bands (SPEC §5, §4 fallback) |
//! | `pipeline` | the whole wiring from inputs to outputs, shared by runtime and tests |
//! | `token` | HMAC-SHA256 subscriber tokens (SPEC §5) |
//! | `reference` | a naive batch implementation of SPEC §2–3, the test oracle |

pub mod basket;
pub mod cell;
pub mod dedup;
pub mod demographics;
pub mod drive_cache;
pub mod expiry;
pub mod ingest;
pub mod loyalty;
pub mod model;
pub mod msisdn;
pub mod phone;
pub mod pipeline;
pub mod promotions;
pub mod reference;
pub mod route;
pub mod segments;
pub mod spatial;
pub mod stores;
pub mod time;
pub mod token;
