//! Sinks: where results leave the engine.
//!
//! | module | owns |
//! |---|---|
//! | `collect` | the dataflow side: every output's updates gathered on worker 0 |
//! | `files` | the output files' formats: promotions, rules, recommendations, dead letters, metrics |
//! | `outputs` | the views on worker 0 (updates folded at the completed time), the change stream, rewriting the files |
//! | `kafka` | the outputs as upsert topics: keys, values, changes per time, metrics |
//! | `snapshots` | the dated segment snapshots, published to a live lookup service too |

pub mod collect;
pub mod files;
pub mod kafka;
pub mod outputs;
pub mod snapshots;
