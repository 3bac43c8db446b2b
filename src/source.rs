//! Sources: everything that reads the dataset directory (SPEC §1).
//!
//! | module | owns |
//! |---|---|
//! | `csv_table` | generic CSV reading: header check, per-row dead letters |
//! | `tables` | the typed tables (towers, stores, loyalty, …) and change files |
//! | `cdr_file` | `cdrs.jsonl[.gz]`: byte-range splitting at line boundaries, parsing, lateness |
//! | `kafka` | CDRs from a Kafka topic: partition `p` on worker `p mod W`, lateness per partition |

pub mod cdr_file;
pub mod changes;
pub mod csv_table;
pub mod kafka;
pub mod tables;
