//! Lookup latency of `cdrflow serve` (SPEC §5, §7: segment lookups p99 < 1 ms
//! at 10 000 requests/s).
//!
//! ```text
//! 1 M synthetic subscribers ─Snapshot::from_rows─▶ Store ─▶ server (tokio, in process, 127.0.0.1:0)
//!                                                             ▲ keep-alive HTTP/1.1 connections
//! pacer thread ─(intended send times)─▶ queue ─▶ client tasks (hyper) ─▶ hdrhistogram
//! ```
//!
//! Open loop: a pacer thread releases request *i* at `start + i / rate` into a
//! queue that the client connections drain, and each latency is measured from
//! that intended time, so a slow answer delays the ones queued behind it
//! instead of hiding them (no coordinated omission). A second histogram times
//! only the request on its connection (service time). Then a closed loop: every
//! connection sends as fast as answers come back, for the highest sustained
//! rate. Server, client and pacer share the machine's cores.
//!
//! `cargo bench --bench lookup [-- --subscribers N --rate R --secs S --max-secs S --connections C]`

#[path = "common.rs"]
mod common;
use common::*;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Mutex};

use cdrflow::dataflows::token::Tokenizer;
use cdrflow::serve::{serve_on, FeatureValue, Roles, Service, Snapshot, Store, SubscriberRow};
use cdrflow::sink::snapshots::FEATURE_COLUMNS;

const BEARER: &str = "bench-bearer";
const DATE: i64 = 1_795_305_600; // 2026-11-22

struct Params {
    subscribers: u64,
    rate: f64,
    secs: f64,
    max_secs: f64,
    connections: usize,
}

fn params() -> Params {
    let mut p = Params {
        subscribers: 1_000_000,
        rate: 10_000.0,
        secs: 10.0,
        max_secs: 5.0,
        connections: 32,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.windows(2) {
        let v = &pair[1];
        match pair[0].as_str() {
            "--subscribers" => p.subscribers = v.parse().expect("--subscribers N"),
            "--rate" => p.rate = v.parse().expect("--rate R"),
            "--secs" => p.secs = v.parse().expect("--secs S"),
            "--max-secs" => p.max_secs = v.parse().expect("--max-secs S"),
            "--connections" => p.connections = v.parse().expect("--connections C"),
            _ => {}
        }
    }
    p
}

/// splitmix64: the synthetic data is a pure function of the subscriber index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<'a>(h: u64, shift: u32, options: &[&'a str]) -> &'a str {
    options[((h >> shift) % options.len() as u64) as usize]
}

/// Subscriber `i`: token of a synthetic msisdn, default-style segments, features.
fn row(tokens: &Tokenizer, i: u64) -> SubscriberRow {
    let h = mix(i);
    let mut segments = vec![
        pick(h, 0, &["gender:F", "gender:M", "gender:X", "gender:U"]).to_string(),
        pick(
            h,
            4,
            &[
                "age:18-24",
                "age:25-34",
                "age:35-44",
                "age:45-54",
                "age:55-64",
                "age:65+",
                "age:unknown",
            ],
        )
        .to_string(),
        pick(h, 8, &["plan:prepaid", "plan:postpaid", "plan:business"]).to_string(),
        pick(h, 12, &["spend:low", "spend:mid", "spend:high"]).to_string(),
        pick(h, 16, &["contacts:few", "contacts:many"]).to_string(),
    ];
    for (bit, s) in [
        (20, "usage:data_heavy"),
        (21, "usage:voice_heavy"),
        (22, "behavior:night_owl"),
        (23, "behavior:roamer"),
    ] {
        if h >> bit & 3 == 0 {
            segments.push(s.to_string());
        }
    }
    let events = (h >> 24) % 400;
    let share = |shift: u32| FeatureValue::from_f64(((h >> shift) % 101) as f64 / 100.0);
    let features = vec![
        FeatureValue::Int(events as i64),
        FeatureValue::Int(((h >> 32) % 40_000) as i64),
        FeatureValue::Int(((h >> 40) % 200) as i64),
        FeatureValue::Int(((h >> 20) % 20_000_000_000) as i64),
        FeatureValue::Int(((h >> 28) % 9_000) as i64),
        FeatureValue::Int(((h >> 36) % 80) as i64),
        share(44),
        share(48),
        share(52),
        FeatureValue::Int(((h >> 56) % 31) as i64),
        if h & 7 == 0 {
            FeatureValue::Null
        } else {
            FeatureValue::Int(18 + (h >> 58) as i64)
        },
    ];
    SubscriberRow {
        token: tokens.token(&format!("+4915{i:010}")),
        segments,
        features,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

type Sender = SendRequest<Empty<Bytes>>;

async fn connect(addr: std::net::SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn connect_all(addr: std::net::SocketAddr, n: usize) -> Vec<Sender> {
    let mut senders = Vec::with_capacity(n);
    for _ in 0..n {
        senders.push(connect(addr).await);
    }
    senders
}

/// One lookup on a keep-alive connection: its status once the body is read.
async fn lookup(sender: &mut Sender, token: u128, auth: &HeaderValue) -> StatusCode {
    sender.ready().await.expect("connection alive");
    let req = Request::get(format!("/v1/segments/{token:032x}"))
        .header(HOST, "bench")
        .header(AUTHORIZATION, auth.clone())
        .body(Empty::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status();
    resp.into_body().collect().await.expect("body");
    status
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 120_000_000_000, 3).expect("histogram bounds")
}

/// Latency figures in ms.
fn figures(h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1e6
    )
}

struct Outcome {
    /// From the intended send time to the answer (open loop only).
    intended: Histogram<u64>,
    /// From the intended send time to the send: pacer lag and waiting for a free connection.
    waited: Histogram<u64>,
    /// From the send to the answer.
    service: Histogram<u64>,
    errors: u64,
}

impl Outcome {
    fn new() -> Self {
        Outcome {
            intended: histogram(),
            waited: histogram(),
            service: histogram(),
            errors: 0,
        }
    }

    fn add(&mut self, other: &Outcome) {
        self.intended.add(&other.intended).expect("same bounds");
        self.waited.add(&other.waited).expect("same bounds");
        self.service.add(&other.service).expect("same bounds");
        self.errors += other.errors;
    }
}

/// Open loop at `rate` for `secs`: latency from each request's intended time.
async fn open_loop(
    senders: Vec<Sender>,
    tokens: Arc<Vec<u128>>,
    rate: f64,
    secs: f64,
) -> (Outcome, f64) {
    let total = (rate * secs) as u64;
    let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let start = Instant::now() + Duration::from_millis(50);
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send((i, at)).is_err() {
                break;
            }
        }
    });
    let auth = HeaderValue::from_str(&format!("Bearer {BEARER}")).expect("header");
    let mut tasks = Vec::new();
    for mut sender in senders {
        let (rx, tokens, auth) = (rx.clone(), tokens.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::new();
            let mut last = start;
            loop {
                let job = rx.lock().await.recv().await;
                let Some((i, at)) = job else { break };
                let token = tokens[(i.wrapping_mul(0x9E37_79B9) % tokens.len() as u64) as usize];
                let sent = Instant::now();
                if lookup(&mut sender, token, &auth).await != StatusCode::OK {
                    out.errors += 1;
                }
                let done = Instant::now();
                out.intended
                    .saturating_record((done - at).as_nanos() as u64);
                out.service
                    .saturating_record((done - sent).as_nanos() as u64);
                out.waited
                    .saturating_record(sent.saturating_duration_since(at).as_nanos() as u64);
                last = last.max(done);
            }
            (out, last)
        }));
    }
    let mut all = Outcome::new();
    let mut end = start;
    for t in tasks {
        let (out, last) = t.await.expect("client task");
        all.add(&out);
        end = end.max(last);
    }
    pacer.join().expect("pacer");
    let achieved = all.intended.len() as f64 / (end - start).as_secs_f64();
    (all, achieved)
}

/// Closed loop for `secs`: every connection sends its next request as soon as
/// the answer to the last one is read. Returns (outcome, requests/s).
async fn closed_loop(senders: Vec<Sender>, tokens: Arc<Vec<u128>>, secs: f64) -> (Outcome, f64) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let auth = HeaderValue::from_str(&format!("Bearer {BEARER}")).expect("header");
    let mut tasks = Vec::new();
    for (c, mut sender) in senders.into_iter().enumerate() {
        let (tokens, auth) = (tokens.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::new();
            let mut i = mix(c as u64);
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    break;
                }
                i = mix(i);
                let token = tokens[(i % tokens.len() as u64) as usize];
                if lookup(&mut sender, token, &auth).await != StatusCode::OK {
                    out.errors += 1;
                }
                out.service
                    .saturating_record(sent.elapsed().as_nanos() as u64);
            }
            out
        }));
    }
    let mut all = Outcome::new();
    for t in tasks {
        all.add(&t.await.expect("client task"));
    }
    let rate = all.service.len() as f64 / start.elapsed().as_secs_f64();
    (all, rate)
}

fn main() {
    let p = params();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("lookup benchmark: cdrflow serve, GET /v1/segments/{{token}} (SPEC §5, §7: p99 < 1 ms at 10 000 requests/s)");
    println!("machine: {cores} cores (nproc), {}", cpu_model());
    println!(
        "command: cargo bench --bench lookup -- --subscribers {} --rate {} --secs {} --max-secs {} --connections {}",
        p.subscribers, p.rate, p.secs, p.max_secs, p.connections
    );

    let built = Instant::now();
    let rss_before = proc_kb("/proc/self/status", "VmRSS:");
    let tokenizer = Tokenizer::new(b"bench-key");
    let mut tokens = Vec::with_capacity(p.subscribers as usize);
    let names = FEATURE_COLUMNS[1..].iter().map(|s| s.to_string()).collect();
    let rows = (0..p.subscribers).map(|i| {
        let r = row(&tokenizer, i);
        tokens.push(u128::from_str_radix(&r.token, 16).expect("hex token"));
        r
    });
    let snapshot =
        Snapshot::from_rows(DATE, names, rows, [], []).expect("synthetic rows are valid");
    let tokens = Arc::new(tokens);
    println!(
        "snapshot: {} subscribers built in {:.1} s; RSS +{:.0} MiB ({:.0} B per subscriber)",
        snapshot.len(),
        built.elapsed().as_secs_f64(),
        (proc_kb("/proc/self/status", "VmRSS:") - rss_before) as f64 / 1024.0,
        (proc_kb("/proc/self/status", "VmRSS:") - rss_before) as f64 * 1024.0
            / snapshot.len().max(1) as f64,
    );
    let service = Arc::new(Service {
        store: Arc::new(Store::new(snapshot)),
        roles: Roles::from_pairs([(BEARER, "analyst")]),
        tokens: tokenizer,
        monitor: Default::default(),
    });

    // The server: its own multi-thread runtime (one worker per core).
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    server.spawn(serve_on(listener, service));

    // The client: one thread.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    client.block_on(async {
        // Warm up: every connection answers a few requests.
        let warm_up = connect_all(addr, p.connections).await;
        let (_, warm) = closed_loop(warm_up, tokens.clone(), 1.0).await;
        println!("warm-up: 1 s closed loop at {warm:.0} requests/s");
        let senders = connect_all(addr, p.connections).await;
        let (out, achieved) = open_loop(senders, tokens.clone(), p.rate, p.secs).await;
        println!(
            "open loop: offered {:.0} requests/s for {:.0} s over {} keep-alive connections: achieved {achieved:.0} requests/s, {} requests, {} errors",
            p.rate, p.secs, p.connections, out.intended.len(), out.errors
        );
        println!("  latency from intended send time: {}", figures(&out.intended));
        println!("  latency on the connection (service): {}", figures(&out.service));
        println!("  wait before the send (pacer lag, no free connection): {}", figures(&out.waited));

        let senders = connect_all(addr, p.connections).await;
        let (out, rate) = closed_loop(senders, tokens.clone(), p.max_secs).await;
        println!(
            "closed loop (max sustained): {rate:.0} requests/s for {:.0} s over {} connections, {} errors; {}",
            p.max_secs, p.connections, out.errors, figures(&out.service)
        );
    });
    println!(
        "peak RSS (VmHWM, server + client + 1 M tokens of the client): {:.0} MiB",
        proc_kb("/proc/self/status", "VmHWM:") as f64 / 1024.0
    );
    server.shutdown_background();
}
