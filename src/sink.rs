//! Sinks: where results leave the engine.
//!
//! | module | owns |
//! |---|---|
//! | `collect` | the dataflow side: every output's updates gathered on worker 0 |
//! | `files` | the output directory: promotions, change stream, dead letters, metrics |

pub mod collect;
pub mod files;
pub mod snapshots;
