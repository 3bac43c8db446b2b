//! The one integration-test binary (links timely, differential once).
//!
//! | module | tests |
//! |---|---|
//! | `util` | running the real binary, temp dirs, generated datasets |
//! | `cli` | refusals: missing files/columns, no token key, bad flags — clear message, non-zero exit |
//! | `workers` | same bytes for `-w 1`, `-w 2` and two processes |
//! | `accounting` | generate → run → the SPEC §2 identities and the planted counts |
//! | `follow` | `run --follow`: appended CDRs and changes reach every output; SIGTERM ends it; equal to the batch run |
//! | `generator_source` | `run --cdr-source generator` = the file run (-w 1, -w 2, two processes); the manifest; `--trace` |
//! | `golden` | hand-computed fixtures under `datasets/*/expected` |
//! | `mlxtend` | rules.csv equals mlxtend apriori + association_rules (when Python has mlxtend) |
//! | `kafka` | the upsert sink on librdkafka's mock cluster: table, partitions, outages, exactly once |
//! | `kafka_outputs` | `run --sink-topic-prefix`: every topic compacted equals its file |
//! | `kafka_source` | CDRs from a topic (librdkafka's mock cluster): = the file run, identities, dead letters with partition/offset |
//! | `progress` | plain progress lines when stderr is not a terminal, the final line, `-q` silences them |
//! | `serve` | the lookup service: status codes, exact bodies, `publish`, the real binary on a port |

mod accounting;
mod cli;
mod follow;
mod generator_source;
mod golden;
mod kafka;
mod kafka_outputs;
mod kafka_source;
mod mlxtend;
mod progress;
mod retention;
mod serve;
mod util;
mod workers;
