//! `cdrflow serve` (SPEC §5): a hand-made run output (two snapshot dates,
//! promotions, loyalty) answered through the axum router in process — every
//! status code, exact bodies, refusals without data, `publish` — and once
//! through the real binary on a loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;

use cdrflow::dataflows::token::Tokenizer;
use cdrflow::serve::{load, router, FeatureValue, Roles, Service, Snapshot, Store, SubscriberRow};

use crate::util::{bin, run, KEY};

const CRM: &str = "crm-secret-1";
const ANALYST: &str = "analyst-secret-2";
/// Subscribers A, B, C are in the latest snapshot (2026-11-22); D only in the older one.
const MSISDN: [&str; 4] = [
    "+4915112345678",
    "+4917100000001",
    "+4916099999999",
    "+4915200000004",
];
const DAY_22: i64 = 1_795_305_600;

fn token(msisdn: &str) -> String {
    Tokenizer::new(KEY.as_bytes()).token(msisdn)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The run output (`out/`), dataset (`data/`) and `roles.csv` in one temp dir.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let [a, b, c, d] = MSISDN.map(token);
    let head = "subscriber_token,events,voice_seconds,sms_count,data_bytes,spend_cents,contacts,night_share,weekend_share,roaming_share,active_days,age\n";
    let old = dir.path().join("out/segments/date=2026-11-21");
    let mut rows = [
        format!("{a},10,60,1,100,1500,2,0.5,0,0,1,30\n"),
        format!("{d},1,0,0,0,0,0,0,0,0,1,\n"),
    ];
    rows.sort();
    write(
        &old.join("features.csv"),
        &format!("{head}{}", rows.concat()),
    );
    let mut segs = [format!("{a},spend:low\n"), format!("{d},usage:dormant\n")];
    segs.sort();
    write(
        &old.join("segments.csv"),
        &format!("subscriber_token,segment\n{}", segs.concat()),
    );

    let new = dir.path().join("out/segments/date=2026-11-22");
    let mut rows = [
        format!("{a},42,3600,7,2048,6500,12,0.25,0.5,0,2,31\n"),
        format!("{b},3,0,3,0,900,1,0,1,0.3333333333333333,1,\n"),
        format!("{c},0,0,0,0,0,0,0,0,0,0,70\n"),
    ];
    rows.sort();
    write(
        &new.join("features.csv"),
        &format!("{head}{}", rows.concat()),
    );
    let mut segs = [
        format!("{a},age:25-34\n"),
        format!("{a},gender:F\n"),
        format!("{a},spend:high\n"),
        format!("{b},gender:U\n"),
        format!("{b},spend:low\n"),
        format!("{c},usage:dormant\n"),
    ];
    segs.sort();
    write(
        &new.join("segments.csv"),
        &format!("subscriber_token,segment\n{}", segs.concat()),
    );
    write(&dir.path().join("out/segments/README"), "not a snapshot\n");

    // A has three promotions (the latest: 2026-11-22 at 10:00), B one, C none.
    write(
        &dir.path().join("out/promotions.csv"),
        &format!(
            "date,customer_id,subscriber_token,record_id,start,cell_id,store_id,haversine_m,drive_m,product_id,source\n\
             2026-11-20,L1,{a},r1,{s20},cell-1,S1,120,300,P1,rule:global\n\
             2026-11-21,L9,{b},r4,{s21},cell-3,S2,900,1400,,\n\
             2026-11-22,L1,{a},r3,{s22a},cell-2,S2,250,600,P7,popular\n\
             2026-11-22,L2,{a},r2,{s22b},cell-1,S1,120,300,P1,rule:sunny\n",
            s20 = DAY_22 - 2 * 86_400 + 100,
            s21 = DAY_22 - 86_400 + 50,
            s22a = DAY_22 + 36_000,
            s22b = DAY_22 + 3_600,
        ),
    );
    // A is two loyalty customers (written two ways); one row is invalid.
    write(
        &dir.path().join("data/loyalty.csv"),
        "customer_id,msisdn,loyalty_points,opt_in,gender,birth_year,region\n\
         L2,0049 151 1234 5678,50,false,F,1995,south\n\
         L1,+49 (151) 12345678,1200,true,F,1995,north\n\
         L9,+4917100000001,10,1,,,east\n\
         L7,not-a-number,5,true,M,1980,west\n",
    );
    write(
        &dir.path().join("roles.csv"),
        &format!("bearer_token,role\n{CRM},crm\n{ANALYST},analyst\n"),
    );
    dir
}

fn service(dir: &Path) -> Arc<Service> {
    let loaded = load::from_dir(&dir.join("out"), Some(&dir.join("data"))).unwrap();
    assert_eq!(loaded.loyalty_skipped, 1);
    Arc::new(Service {
        store: Arc::new(Store::new(loaded.snapshot)),
        roles: Roles::load(&dir.join("roles.csv")).unwrap(),
        tokens: Tokenizer::new(KEY.as_bytes()),
        monitor: Default::default(),
    })
}

/// GET `uri` with an optional bearer: status, parsed body, raw body.
async fn get(app: &Router, uri: &str, bearer: Option<&str>) -> (StatusCode, Value, String) {
    let mut req = Request::builder().uri(uri);
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: {e}: {text}"));
    (status, value, text)
}

fn features_a() -> Value {
    json!({"events": 42, "voice_seconds": 3600, "sms_count": 7, "data_bytes": 2048,
           "spend_cents": 6500, "contacts": 12, "night_share": 0.25, "weekend_share": 0.5,
           "roaming_share": 0, "active_days": 2, "age": 31})
}

#[tokio::test]
async fn segments_answer_from_the_latest_snapshot() {
    let dir = fixture();
    let app = router(service(dir.path()));
    let [a, b, _, d] = MSISDN.map(token);
    let (status, body, _) = get(&app, &format!("/v1/segments/{a}"), Some(ANALYST)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"subscriber_token": a, "as_of": "2026-11-23T00:00:00Z",
               "segments": ["age:25-34", "gender:F", "spend:high"], "features": features_a()})
    );
    let (status, body, _) = get(&app, &format!("/v1/segments/{b}"), Some(CRM)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["features"]["age"], Value::Null);
    assert_eq!(body["features"]["roaming_share"], json!(0.3333333333333333));
    // D is only in the older snapshot.
    let (status, _, _) = get(&app, &format!("/v1/segments/{d}"), Some(ANALYST)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body, _) = get(&app, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["as_of"], "2026-11-23T00:00:00Z");
}

#[tokio::test]
async fn customers_view_has_loyalty_and_the_latest_promotion() {
    let dir = fixture();
    let app = router(service(dir.path()));
    let [a, _, c, _] = MSISDN.map(token);
    let (status, body, text) = get(&app, "/v1/customers/0049%20(151)%2012345678", Some(CRM)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        body,
        json!({
            "subscriber_token": a, "as_of": "2026-11-23T00:00:00Z",
            "segments": ["age:25-34", "gender:F", "spend:high"], "features": features_a(),
            "loyalty": [
                {"customer_id": "L1", "loyalty_points": 1200, "opt_in": true, "region": "north"},
                {"customer_id": "L2", "loyalty_points": 50, "opt_in": false, "region": "south"},
            ],
            "latest_promotion": {
                "date": "2026-11-22", "customer_id": "L1", "subscriber_token": a,
                "record_id": "r3", "start": DAY_22 + 36_000, "cell_id": "cell-2",
                "store_id": "S2", "haversine_m": 250, "drive_m": 600,
                "product_id": "P7", "source": "popular"
            }
        })
    );
    assert!(!text.contains("4915112345678"), "no phone number: {text}");
    // C: no loyalty customer, no promotion.
    let (status, body, _) = get(&app, &format!("/v1/customers/{}", MSISDN[2]), Some(CRM)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subscriber_token"], json!(c));
    assert_eq!(body["loyalty"], json!([]));
    assert_eq!(body["latest_promotion"], Value::Null);
    assert_eq!(body["features"]["age"], json!(70));
}

#[tokio::test]
async fn refusals_have_the_right_status_and_no_data() {
    let dir = fixture();
    let app = router(service(dir.path()));
    let a = token(MSISDN[0]);
    let seg = format!("/v1/segments/{a}");
    let cust = format!("/v1/customers/{}", MSISDN[0]);
    let cases: Vec<(&str, String, Option<&str>, StatusCode)> = vec![
        ("no bearer", seg.clone(), None, StatusCode::UNAUTHORIZED),
        (
            "unknown bearer",
            seg.clone(),
            Some("guess"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no bearer, customers",
            cust.clone(),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong role",
            cust.clone(),
            Some(ANALYST),
            StatusCode::FORBIDDEN,
        ),
        (
            "wrong role before 400",
            "/v1/customers/12".into(),
            Some(ANALYST),
            StatusCode::FORBIDDEN,
        ),
        (
            "401 before 400",
            "/v1/segments/XYZ".into(),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "uppercase token",
            seg.to_uppercase().replace("/V1/SEGMENTS", "/v1/segments"),
            Some(ANALYST),
            StatusCode::BAD_REQUEST,
        ),
        (
            "short token",
            format!("/v1/segments/{}", &a[..31]),
            Some(ANALYST),
            StatusCode::BAD_REQUEST,
        ),
        (
            "msisdn not a token",
            format!("/v1/segments/{}", MSISDN[0]),
            Some(CRM),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad msisdn",
            "/v1/customers/4915112345678".into(),
            Some(CRM),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad msisdn chars",
            "/v1/customers/+49151abc45678".into(),
            Some(CRM),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown token",
            format!("/v1/segments/{}", "0".repeat(32)),
            Some(ANALYST),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown msisdn",
            "/v1/customers/+4930123456789".into(),
            Some(CRM),
            StatusCode::NOT_FOUND,
        ),
        (
            "no route",
            "/v1/other".into(),
            Some(CRM),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, uri, bearer, want) in cases {
        let (status, body, text) = get(&app, &uri, bearer).await;
        assert_eq!(status, want, "{what}: {uri}: {text}");
        let obj = body.as_object().unwrap_or_else(|| panic!("{what}: {text}"));
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["error"], "{what}: {text}");
        for secret in [
            a.as_str(),
            "4915112345678",
            "spend:high",
            "gender:F",
            "L1",
            CRM,
            ANALYST,
        ] {
            assert!(
                !text.contains(secret),
                "{what}: refusal holds {secret}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_published_snapshot_is_seen_by_the_next_request() {
    let dir = fixture();
    let svc = service(dir.path());
    let app = router(svc.clone());
    let [a, b, _, _] = MSISDN.map(token);
    let names = ["events", "age"].map(String::from).to_vec();
    let next = Snapshot::from_rows(
        DAY_22 + 86_400,
        names,
        [SubscriberRow {
            token: a.clone(),
            segments: vec!["usage:sms_heavy".into(), "gender:F".into()],
            features: vec![FeatureValue::Int(50), FeatureValue::from_f64(31.0)],
        }],
        [],
        [],
    )
    .unwrap();
    svc.store.publish(next);
    let (status, body, _) = get(&app, &format!("/v1/segments/{a}"), Some(ANALYST)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"subscriber_token": a, "as_of": "2026-11-24T00:00:00Z",
               "segments": ["gender:F", "usage:sms_heavy"], "features": {"events": 50, "age": 31}})
    );
    let (status, _, _) = get(&app, &format!("/v1/segments/{b}"), Some(ANALYST)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body, _) = get(&app, "/healthz", None).await;
    assert_eq!(body["as_of"], "2026-11-24T00:00:00Z");
}

#[test]
fn missing_or_bad_inputs_are_named_and_refused() {
    let dir = fixture();
    let p = |rel: &str| dir.path().join(rel).to_str().unwrap().to_string();
    let serve = |snapshots: &str, roles: &str| {
        let args = [
            "serve",
            "--snapshots",
            snapshots,
            "--roles",
            roles,
            "--listen",
            "127.0.0.1:0",
        ];
        let out = run(&args, false);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = serve(&p("nowhere"), &p("roles.csv"));
    assert!(code == Some(2) && err.contains("nowhere"), "{err}");
    let (code, err) = serve(&p("out"), &p("no-roles.csv"));
    assert!(code == Some(2) && err.contains("no-roles.csv"), "{err}");
    write(&dir.path().join("bad-roles.csv"), "token,role\nx,crm\n");
    let (code, err) = serve(&p("out"), &p("bad-roles.csv"));
    assert!(
        code == Some(2) && err.contains("bad-roles.csv") && err.contains("bearer_token"),
        "{err}"
    );
    write(&dir.path().join("headless-roles.csv"), "secret-y,crm\n");
    let (code, err) = serve(&p("out"), &p("headless-roles.csv"));
    assert!(
        code == Some(2) && err.contains("headless-roles.csv") && !err.contains("secret-y"),
        "{err}"
    );
    write(
        &dir.path().join("dup-roles.csv"),
        "bearer_token,role\nsecret-x,crm\nsecret-x,analyst\n",
    );
    let (code, err) = serve(&p("out"), &p("dup-roles.csv"));
    assert!(
        code == Some(2) && err.contains("dup-roles.csv:3") && !err.contains("secret-x"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("out/segments/date=2026-11-22/segments.csv")).unwrap();
    let (code, err) = serve(&p("out"), &p("roles.csv"));
    assert!(code == Some(2) && err.contains("segments.csv"), "{err}");
}

/// One HTTP/1.1 GET over a fresh connection: (status, body).
fn raw_get(addr: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let auth = bearer.map_or(String::new(), |b| format!("Authorization: Bearer {b}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, body.to_string())
}

/// Parses Prometheus text (prometheus-parse) and checks every number of
/// `metrics.json`: counters as `cdrflow_<name>_total`, the rest as gauges,
/// the watermark as `cdrflow_watermark_seconds`, groups as labelled families.
fn assert_prometheus_matches(text: &str, metrics: &Value) {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .and_then(|s| match s.value {
                prometheus_parse::Value::Counter(x)
                | prometheus_parse::Value::Gauge(x)
                | prometheus_parse::Value::Untyped(x) => Some(x),
                _ => None,
            })
    };
    let counters = [
        "cdrs_read",
        "cdrs_valid",
        "cdrs_dead_lettered",
        "cdrs_late",
        "cdrs_duplicate",
        "cdrs_unique",
        "cdrs_unknown_cell",
        "loyalty_matches",
        "router_requests",
        "requests_routed",
        "requests_within_drive_limit",
        "router_calls",
        "cache_hits",
    ];
    let mut checked = 0;
    for (k, v) in metrics.as_object().unwrap() {
        match v {
            Value::Number(n) => {
                let name = if k == "watermark" {
                    "cdrflow_watermark_seconds".to_string()
                } else if counters.contains(&k.as_str()) {
                    format!("cdrflow_{k}_total")
                } else {
                    format!("cdrflow_{k}")
                };
                assert_eq!(value(&name, None), n.as_f64(), "{name}\n{text}");
                checked += 1;
            }
            Value::Object(group) => {
                let label = if k.ends_with("reasons") || k.ends_with("by_reason") {
                    "reason"
                } else {
                    "file"
                };
                for (name, n) in group {
                    let metric = format!("cdrflow_{k}_total");
                    assert_eq!(
                        value(&metric, Some((label, name))),
                        n.as_f64(),
                        "{metric}{{{label}={name}}}"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 15, "{checked} numbers checked");
}

/// Every integer of `metrics.json`, and every non-zero entry of its groups,
/// is on the page as `data-metric="NAME" data-value="N"`.
fn assert_page_matches(page: &str, metrics: &Value) {
    let mut checked = 0;
    for (k, v) in metrics.as_object().unwrap() {
        let mut expect = |name: String, n: &Value| {
            let tag = format!("data-metric=\"{name}\" data-value=\"{n}\"");
            assert!(page.contains(&tag), "{tag} not on the page");
            checked += 1;
        };
        match v {
            Value::Number(_) => expect(k.clone(), v),
            Value::Object(group) => {
                for (name, n) in group.iter().filter(|(_, n)| n.as_i64() != Some(0)) {
                    expect(format!("{k}/{name}"), n);
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 20, "{checked} numbers checked");
}

/// The JSON data of the first server-sent event of `path`.
fn first_event(addr: &str, path: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(at) = text.find("\ndata: ") {
            if let Some(end) = text[at + 7..].find('\n') {
                return serde_json::from_str(&text[at + 7..at + 7 + end]).unwrap();
            }
        }
    }
}

/// A `cdrflow` child whose stderr lines arrive through a channel, so a
/// silent child fails the test after a bounded wait instead of hanging it.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        let mut child = bin()
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The rest of the first stderr line starting with `prefix`.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(std::time::Duration::from_secs(120)) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.to_string(),
                    None => self.seen.push(line),
                },
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no line {prefix:?} ({e}); stderr: {:?}", self.seen);
                }
            }
        }
    }

    /// The bound address of a server child.
    fn addr(&mut self) -> String {
        self.wait_for("listening on http://")
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_binary_serves_on_the_port_it_prints() {
    let dir = fixture();
    let p = |rel: &str| dir.path().join(rel).to_str().unwrap().to_string();
    let mut server = Child::spawn(&[
        "serve",
        "--snapshots",
        &p("out"),
        "--roles",
        &p("roles.csv"),
        "--data",
        &p("data"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let addr = server.addr();
    let (status, body) = raw_get(&addr, "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["as_of"], "2026-11-23T00:00:00Z");
    let (status, body) = raw_get(&addr, "/v1/customers/+4915112345678", Some(CRM));
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["subscriber_token"], json!(token(MSISDN[0])));
    assert_eq!(body["latest_promotion"]["record_id"], "r3");
    assert_eq!(body["loyalty"].as_array().map(Vec::len), Some(2));
    let (status, _) = raw_get(&addr, "/v1/customers/+4915112345678", None);
    assert_eq!(status, 401);
}

/// `run --serve` on `datasets/loyalty_changes`: once the input has ended the
/// live service answers like `serve --snapshots` over the run's own output
/// (every token of the last snapshot, every loyalty and subscriber msisdn),
/// the loyalty changes are applied (hand-checked customers below), and
/// SIGTERM ends the run with exit 0.
#[test]
fn a_live_run_serves_what_its_files_serve() {
    let fixture = fixture();
    let roles = fixture.path().join("roles.csv");
    let roles = roles.to_str().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/loyalty_changes");
    let data = data.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out = out.path().to_str().unwrap();
    let mut live = Child::spawn(&[
        "run",
        "--data",
        data,
        "--out",
        out,
        "--serve",
        "127.0.0.1:0",
        "--roles",
        roles,
        "-q",
    ]);
    let live_addr = live.addr();
    live.wait_for("cdrflow: run finished; serving");
    let mut files = Child::spawn(&[
        "serve",
        "--snapshots",
        out,
        "--data",
        data,
        "--roles",
        roles,
        "--listen",
        "127.0.0.1:0",
    ]);
    let files_addr = files.addr();

    let both = |path: &str, bearer: Option<&str>| {
        let live = raw_get(&live_addr, path, bearer);
        assert_eq!(live, raw_get(&files_addr, path, bearer), "GET {path}");
        live
    };
    let (status, health) = both("/healthz", None);
    assert_eq!(status, 200);
    assert!(
        health.contains("\"as_of\":\"2026-03-05T00:00:00Z\""),
        "{health}"
    );
    let latest = std::fs::read_dir(Path::new(out).join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let features = std::fs::read_to_string(latest.join("features.csv")).unwrap();
    let tokens: Vec<&str> = features.lines().skip(1).map(|l| &l[..32]).collect();
    assert!(tokens.len() >= 8, "{features}");
    for t in &tokens {
        assert_eq!(both(&format!("/v1/segments/{t}"), Some(ANALYST)).0, 200);
    }
    let mut msisdns: Vec<String> = Vec::new();
    for file in ["loyalty.csv", "subscribers.csv"] {
        let text = std::fs::read_to_string(Path::new(data).join(file)).unwrap();
        msisdns.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split(',').nth(1))
                .map(String::from),
        );
    }
    for m in &msisdns {
        both(
            &format!("/v1/customers/{}", m.replace(' ', "%20")),
            Some(CRM),
        );
    }

    // Hand-checked against loyalty_changes.jsonl and expected/promotions.csv.
    let customer = |msisdn: &str| -> Value {
        let (status, body) = raw_get(&live_addr, &format!("/v1/customers/{msisdn}"), Some(CRM));
        assert_eq!(status, 200, "{msisdn}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let summary = |id: &str, points: i64, opt_in: bool| json!([{"customer_id": id, "loyalty_points": points, "opt_in": opt_in, "region": "west"}]);
    // C1 opted out; C6 opted out at 1772535600 and back in at 1772539200.
    assert_eq!(
        customer("+4915300000001")["loyalty"],
        summary("C1", 100, false)
    );
    assert_eq!(
        customer("+4915300000006")["loyalty"],
        summary("C6", 100, true)
    );
    // C4 was deleted; C10's points changed and its latest promotion is d2-m10.
    assert_eq!(customer("+4915300000004")["loyalty"], json!([]));
    let c10 = customer("+4915300000010");
    assert_eq!(c10["loyalty"], summary("C10", 8999, true));
    assert_eq!(c10["latest_promotion"]["record_id"], "d2-m10");
    assert_eq!(c10["latest_promotion"]["date"], "2026-03-04");

    // The monitor: /metrics and /api/monitor say what metrics.json says,
    // live and from the files, and hold no phone number, token or customer id.
    let metrics: Value =
        serde_json::from_str(&crate::util::read(Path::new(out).join("metrics.json"))).unwrap();
    for addr in [&live_addr, &files_addr] {
        let (status, text) = raw_get(addr, "/metrics", None);
        assert_eq!(status, 200);
        assert_prometheus_matches(&text, &metrics);
        // Every segment lookup above was timed.
        let count = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("cdrflow_lookup_duration_seconds_count{route=\"segments\"} ")
            })
            .and_then(|n| n.parse::<usize>().ok());
        assert!(count.is_some_and(|n| n >= tokens.len()), "{count:?}");
        let (status, body) = raw_get(addr, "/api/monitor", None);
        assert_eq!(status, 200);
        let state: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(state["metrics"], metrics);
        // Server-sent events: the first `monitor` event carries the same state.
        let event = first_event(addr, "/api/events");
        assert_eq!(event["metrics"], metrics);
        // The page shows every metrics.json number, tagged with its name.
        let (status, page) = raw_get(addr, "/", None);
        assert_eq!(status, 200);
        assert_page_matches(&page, &metrics);
        let (status, panels) = raw_get(addr, "/api/panels", None);
        assert_eq!(status, 200);
        assert_page_matches(&panels, &metrics);
        let mut secrets: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        secrets.extend(msisdns.iter().map(|m| m.replace(' ', "")));
        secrets.extend((1..=10).map(|i| format!("+49153000000{i:02}")));
        let ids = ["C1", "C10", "C3"];
        // Whole words only: a number such as the fixture's invalid msisdn
        // `12345` can be part of a timestamp or an SVG coordinate.
        let words = |answer: &str| -> std::collections::HashSet<String> {
            answer
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+'))
                .map(String::from)
                .collect()
        };
        for answer in [&text, &body, &page, &panels] {
            let words = words(answer);
            for secret in &secrets {
                assert!(!words.contains(secret.as_str()), "{secret} leaked");
            }
        }
        for id in ids {
            assert!(!text.contains(&format!("\"{id}\"")) && !body.contains(&format!("\"{id}\"")));
            for html in [&page, &panels] {
                // As a whole word: element text or attribute value.
                for around in [(">", "<"), ("\"", "\""), ("/", "\""), (" ", " ")] {
                    let tagged = format!("{}{id}{}", around.0, around.1);
                    assert!(!html.contains(&tagged), "{id} leaked into the page");
                }
            }
        }
    }

    // The live breakdowns add up to the files: promotions by store, by
    // source and by hour each sum to promotions.csv's rows; rules by
    // context to rules.csv's; the latest snapshot's segment counts to its
    // segments.csv.
    let (_, body) = raw_get(&live_addr, "/api/monitor", None);
    let state: Value = serde_json::from_str(&body).unwrap();
    let sum = |v: &Value| -> u64 {
        v.as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum()
    };
    let rows = |f: &str| crate::util::read(Path::new(out).join(f)).lines().count() as u64 - 1;
    let b = &state["breakdown"];
    for by in [
        "promotions_by_store",
        "promotions_by_source",
        "promotions_by_hour",
    ] {
        assert_eq!(sum(&b[by]), rows("promotions.csv"), "{by}");
    }
    assert_eq!(sum(&b["rules_by_context"]), rows("rules.csv"));
    // C1, C2, C4 and C80 lost their day 0 and 1 promotions (README of the fixture).
    assert_eq!(b["promotions_retracted"], 8);
    let segments_csv = crate::util::read(latest.join("segments.csv"));
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for line in segments_csv.lines().skip(1) {
        *counts.entry(line[33..].to_string()).or_default() += 1;
    }
    assert_eq!(
        state["segments"]["latest"][1],
        serde_json::to_value(&counts).unwrap()
    );
    assert_eq!(state["segments"]["latest"][0], "2026-03-04");
    // serve --snapshots computes the same breakdowns and segment counts
    // from the files the run wrote.
    let (_, body) = raw_get(&files_addr, "/api/monitor", None);
    let from_files: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(from_files["breakdown"], state["breakdown"]);
    assert_eq!(from_files["segments"], state["segments"]);
    assert_eq!(sum(&b["promotions_by_cell"]), rows("promotions.csv"));
    // The funnel narrows step by step and ends at the view.
    let funnel: Vec<i64> = [
        "cdrs_unique",
        "loyalty_matches",
        "router_requests",
        "requests_routed",
        "requests_within_drive_limit",
    ]
    .iter()
    .map(|k| metrics[*k].as_i64().unwrap())
    .collect();
    assert!(funnel.windows(2).all(|w| w[0] >= w[1]), "{funnel:?}");
    assert!(funnel[4] >= metrics["promotions"].as_i64().unwrap() && funnel[1] > 0);
    // The engine panel: the worker and the arrangements, from the logging.
    let engine = &state["engine"];
    // One row per worker (the default -w is the machine's cores), each with
    // the records it received.
    let workers = engine["workers"].as_array().unwrap();
    assert!(!workers.is_empty(), "{engine}");
    for (i, w) in workers.iter().enumerate() {
        assert_eq!(w["worker"], i, "{engine}");
        assert!(w["records"].as_u64().unwrap() > 0, "{engine}");
    }
    let arrangements = engine["arrangements"].as_array().unwrap();
    assert!(
        arrangements
            .iter()
            .any(|a| a["name"] == "DailyCap" && a["batches"].as_i64() > Some(0)),
        "{engine}"
    );
    let (_, text) = raw_get(&live_addr, "/metrics", None);
    assert!(
        text.lines()
            .any(|l| l.starts_with("cdrflow_arrangement_records{arrangement=\"DailyCap\"}")),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("cdrflow_worker_records_total{worker=\"0\"}")));
    // The map: the fixture's towers and stores, promotions on their cells.
    let (_, page) = raw_get(&live_addr, "/", None);
    assert!(
        page.contains(" towers, ") && page.contains("<circle"),
        "map drawn"
    );

    let pid = live.child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = live.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", live.seen);
}

/// `--no-engine-log`: the run serves the same counts, with an empty engine
/// panel (no timely/differential logger registered).
#[test]
fn no_engine_log_leaves_the_engine_panel_empty() {
    let fixture = fixture();
    let roles = fixture.path().join("roles.csv");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/loyalty_changes");
    let out = tempfile::tempdir().unwrap();
    let mut live = Child::spawn(&[
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--serve",
        "127.0.0.1:0",
        "--roles",
        roles.to_str().unwrap(),
        "--no-engine-log",
        "-q",
    ]);
    let addr = live.addr();
    live.wait_for("cdrflow: run finished; serving");
    let (status, body) = raw_get(&addr, "/api/monitor", None);
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).unwrap();
    let metrics: Value =
        serde_json::from_str(&crate::util::read(out.path().join("metrics.json"))).unwrap();
    assert_eq!(state["metrics"], metrics);
    assert_eq!(state["engine"]["workers"], json!([]), "{body}");
    assert_eq!(state["engine"]["arrangements"], json!([]), "{body}");
    let (_, page) = raw_get(&addr, "/", None);
    assert!(page.contains("no engine samples"));
}
