//! The HTTP routes of the lookup service (SPEC §5):
//!
//! | route | who | answer |
//! |---|---|---|
//! | `GET /healthz` | anyone | `{"status":"ok","as_of":…}` |
//! | `GET /v1/segments/{token}` | any listed bearer | `subscriber_token`, `as_of`, `segments`, `features` |
//! | `GET /v1/customers/{msisdn}` | role `crm` | the above plus `loyalty` and `latest_promotion` |
//! | `GET /` | anyone | the monitor page (aggregates only; updates itself from `/api/events`) |
//! | `GET /api/panels` | anyone | the page's panels now (HTML) |
//! | `GET /metrics` | anyone | Prometheus (OpenMetrics) text: the run's counts, lookup latency |
//! | `GET /api/monitor` | anyone | the monitor's state as JSON (aggregates only) |
//! | `GET /api/events` | anyone | server-sent `monitor` events: that state on every change |
//!
//! Checks run in this order: bearer (401 missing or unknown, 403 wrong role),
//! then the id (400 malformed token or msisdn), then the lookup (404). A
//! refusal's body is `{"error":"<reason>"}` and holds nothing the caller sent
//! or the store holds. Data answers carry `Cache-Control: no-store`. No
//! response ever holds a phone number: `/v1/customers` answers by token.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::ser::Serialize;

use cdrflow_dataflows::phone::normalize_msisdn;
use cdrflow_dataflows::token::Tokenizer;

use super::auth::{Denied, Roles, CRM};
use super::rows::{LoyaltySummary, PromotionRow, TokenKey};
use super::store::{Store, SubscriberView};
use crate::monitor::{page, Monitor};

/// What every request handler shares.
pub struct Service {
    pub store: Arc<Store>,
    pub roles: Roles,
    pub tokens: Tokenizer,
    /// The run's counts for `/metrics` and `/api/monitor`, and the lookup latency.
    pub monitor: Arc<Monitor>,
}

/// The service's routes over `service`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/segments/{token}", get(segments))
        .route("/v1/customers/{msisdn}", get(customers))
        .route("/", get(monitor_page))
        .route("/api/panels", get(monitor_panels))
        .route("/metrics", get(prometheus))
        .route("/api/monitor", get(monitor_state))
        .route("/api/events", get(monitor_events))
        .fallback(|| async { Refusal::NoRoute })
        .with_state(service)
}

/// A refused request: a status and a fixed reason, never data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Denied(Denied),
    MalformedToken,
    MalformedMsisdn,
    UnknownSubscriber,
    NoRoute,
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            Refusal::Denied(Denied::Missing) => (StatusCode::UNAUTHORIZED, "missing bearer token"),
            Refusal::Denied(Denied::Unknown) => (StatusCode::UNAUTHORIZED, "unknown bearer token"),
            Refusal::Denied(Denied::Forbidden) => (StatusCode::FORBIDDEN, "role crm required"),
            Refusal::MalformedToken => (
                StatusCode::BAD_REQUEST,
                "malformed subscriber token: want 32 lowercase hex digits",
            ),
            Refusal::MalformedMsisdn => (StatusCode::BAD_REQUEST, "malformed msisdn"),
            Refusal::UnknownSubscriber => (StatusCode::NOT_FOUND, "unknown subscriber"),
            Refusal::NoRoute => (StatusCode::NOT_FOUND, "no such route"),
            Refusal::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        let body = format!("{{\"error\":\"{reason}\"}}");
        let mut response = (status, json_headers(), body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// 200 with `body` as JSON.
fn json(body: &impl Serialize) -> Result<Response, Refusal> {
    let bytes = serde_json::to_vec(body).map_err(|_| Refusal::Internal)?;
    Ok((json_headers(), bytes).into_response())
}

fn authorize(svc: &Service, headers: &HeaderMap, need: Option<&str>) -> Result<(), Refusal> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    svc.roles
        .authorize(authorization, need)
        .map_err(Refusal::Denied)
}

fn answer(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn healthz(State(svc): State<Arc<Service>>) -> Response {
    let snapshot = svc.store.current();
    answer(json(&serde_json::json!({
        "status": "ok",
        "as_of": (!snapshot.as_of().is_empty()).then(|| snapshot.as_of()),
        "subscribers": snapshot.len(),
    })))
}

/// `GET /metrics`: Prometheus text (aggregates only, no bearer needed).
async fn prometheus(State(svc): State<Arc<Service>>) -> Response {
    let mut response = svc.monitor.prometheus_text().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// `GET /`: the monitor page (aggregates only).
async fn monitor_page(State(svc): State<Arc<Service>>) -> Response {
    let html = page::page(&svc.monitor.current(), &svc.monitor.geo());
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `GET /api/panels`: the page's panels now (the page swaps them in).
async fn monitor_panels(State(svc): State<Arc<Service>>) -> Response {
    let html = page::panels(&svc.monitor.current(), &svc.monitor.geo()).into_string();
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// `GET /api/monitor`: the monitor's state as JSON (aggregates only).
async fn monitor_state(State(svc): State<Arc<Service>>) -> Response {
    answer(json(&*svc.monitor.current()))
}

/// `GET /api/events`: server-sent events, one `monitor` event with the
/// state (as `/api/monitor`) now and after every change (checked twice a
/// second), for the monitor page.
async fn monitor_events(
    State(svc): State<Arc<Service>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let stream = futures_util::stream::unfold(None::<u64>, move |seen| {
        let svc = svc.clone();
        async move {
            loop {
                let state = svc.monitor.current();
                if seen != Some(state.updated_ms) {
                    let event = Event::default()
                        .event("monitor")
                        .json_data(&*state)
                        .unwrap_or_else(|_| Event::default().comment("unencodable"));
                    return Some((Ok(event), Some(state.updated_ms)));
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn segments(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let _timer = Timer(&svc.monitor, "segments", Instant::now());
    answer((|| {
        authorize(&svc, &headers, None)?;
        let text = token.map_err(|_| Refusal::MalformedToken)?.0;
        let key = TokenKey::parse(&text).ok_or(Refusal::MalformedToken)?;
        let snapshot = svc.store.current();
        let view = snapshot.subscriber(key).ok_or(Refusal::UnknownSubscriber)?;
        json(&SegmentsBody::new(&text, snapshot.as_of(), view))
    })())
}

async fn customers(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    msisdn: Result<Path<String>, PathRejection>,
) -> Response {
    let _timer = Timer(&svc.monitor, "customers", Instant::now());
    answer((|| {
        authorize(&svc, &headers, Some(CRM))?;
        let text = msisdn.map_err(|_| Refusal::MalformedMsisdn)?.0;
        let msisdn = normalize_msisdn(&text).ok_or(Refusal::MalformedMsisdn)?;
        let token = svc.tokens.token(&msisdn);
        let key = TokenKey::parse(&token).ok_or(Refusal::Internal)?;
        let snapshot = svc.store.current();
        let view = snapshot.subscriber(key).ok_or(Refusal::UnknownSubscriber)?;
        json(&CustomerBody {
            base: SegmentsBody::new(&token, snapshot.as_of(), view),
            loyalty: snapshot.loyalty(&msisdn),
            latest_promotion: snapshot.latest_promotion(key),
        })
    })())
}

/// Records a lookup's latency when dropped (after the answer is built).
struct Timer<'a>(&'a Monitor, &'static str, Instant);

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.0
            .observe_lookup(self.1, self.2.elapsed().as_secs_f64());
    }
}

/// The sorted segment names of a subscriber, as a JSON array.
struct Segments<'a>(SubscriberView<'a>);

impl Serialize for Segments<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.segments())
    }
}

/// The features of a subscriber, as a JSON object in column order.
struct Features<'a>(SubscriberView<'a>);

impl Serialize for Features<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.features())
    }
}

#[derive(serde::Serialize)]
struct SegmentsBody<'a> {
    subscriber_token: &'a str,
    as_of: &'a str,
    segments: Segments<'a>,
    features: Features<'a>,
}

impl<'a> SegmentsBody<'a> {
    fn new(token: &'a str, as_of: &'a str, view: SubscriberView<'a>) -> Self {
        SegmentsBody {
            subscriber_token: token,
            as_of,
            segments: Segments(view),
            features: Features(view),
        }
    }
}

#[derive(serde::Serialize)]
struct CustomerBody<'a> {
    #[serde(flatten)]
    base: SegmentsBody<'a>,
    loyalty: &'a [LoyaltySummary],
    latest_promotion: Option<&'a PromotionRow>,
}
