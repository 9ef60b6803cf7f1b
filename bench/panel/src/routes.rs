//! The panel's HTTP interface: the page and its assets, a JSON API for what the page
//! does, and the event stream (server-sent events).

use crate::Shared;
use crate::access::{COOKIE, LoginRefused, host_is_ours, origin_is_ours};
use crate::assets;
use crate::job::{self, AnswerError, Refused, RetestRequest, StartRequest};
use crate::view::{self, HistoryQuery};
use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type Shd = State<Arc<Shared>>;

/// The history shows this many runs; the filter narrows it down.
const HISTORY_ROWS: usize = 200;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page() }))
        .route("/panel.js", get(|| async { assets::script() }))
        .route("/panel.css", get(|| async { assets::style() }))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/station", get(station))
        .route("/api/events", get(events))
        .route("/api/start", post(start))
        .route("/api/retest", post(retest))
        .route("/api/answer", post(answer))
        .route("/api/stop", post(stop))
        .route("/api/history", get(history))
        .route("/api/runs/{id}/verify", get(verify))
        .route("/runs/{id}/certificate.pdf", get(certificate))
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

/// An error answer: the bench's English words and, for the page to say it in the
/// operator's language, a code (`refusal.code`) with the values the words hold.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    refusal(status, message, json!({ "code": code }))
}

fn refusal(status: StatusCode, message: impl Into<String>, refusal: Value) -> Response {
    (
        status,
        Json(json!({"error": message.into(), "refusal": refusal})),
    )
        .into_response()
}

/// Every request: from this panel's host and page, and (with a password) from a browser
/// that gave it. The page and its assets are public (the login form is on it).
async fn gate(State(shared): Shd, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let host = text(header::HOST);
    if !host_is_ours(host, shared.address) {
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this is the panel at {}", shared.address),
            json!({"code": "other_address", "address": shared.address.to_string()}),
        );
    }
    if request.method() != Method::GET && !origin_is_ours(text(header::ORIGIN), host) {
        return error(
            StatusCode::FORBIDDEN,
            "foreign_page",
            "a request from another site's page",
        );
    }
    let path = request.uri().path();
    let private = (path.starts_with("/api/") && path != "/api/login") || path.starts_with("/runs/");
    if private && !shared.access.allows(text(header::COOKIE)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "password_needed",
            "the panel's password is needed",
        );
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct Login {
    password: String,
}

async fn login(
    State(shared): Shd,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(l): Json<Login>,
) -> Response {
    if !shared.access.needs_login() {
        return Json(json!({"ok": true})).into_response();
    }
    match shared.access.login(&l.password, client.ip()) {
        Ok(token) => {
            let mut r = Json(json!({"ok": true})).into_response();
            // Until the browser closes; the bench ends it after SESSION_LIFETIME unused.
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(LoginRefused::WrongPassword) => {
            error(StatusCode::UNAUTHORIZED, "wrong_password", "wrong password")
        }
        Err(LoginRefused::TooManyAttempts { retry_after_s }) => {
            let mut r = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong passwords: try again in {retry_after_s} s"),
                json!({"code": "too_many_attempts", "retry_after_s": retry_after_s}),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// The operator leaves: this browser's login ends (and with it its event stream), and its
/// cookie is dropped.
async fn logout(State(shared): Shd, headers: HeaderMap) -> Response {
    shared.access.logout(cookie_header(&headers));
    let mut r = Json(json!({"ok": true})).into_response();
    let gone = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn cookie_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok())
}

async fn station(State(shared): Shd) -> Json<Value> {
    Json(view::station(&shared, chrono::Local::now().date_naive()))
}

/// The session's messages so far, then live ones. A page that falls too far behind is
/// cut off; its browser reconnects and replays.
/// Messages that come in a burst leave together, as one event holding a JSON array: an
/// unpaced run sends a hundred runner events in a tenth of a second, and every event
/// costs the browser a trip through its processes (measured: most of what a page cost a
/// run). A message after a quiet spell leaves at once; a runner event within `BATCH` of
/// the last sending waits until `BATCH` has passed, with whatever came meanwhile. The
/// panel's own messages (questions, the end of a session) never wait.
const BATCH: Duration = Duration::from_millis(25);

/// How often a quiet stream asks whether its login still holds: a stream whose login has
/// ended (logged out, or unused for a shift) ends within this, and the page asks for the
/// password again. A stream that sends asks before every sending.
const LOGIN_CHECK: Duration = Duration::from_secs(2);

async fn events(
    State(shared): Shd,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // The gate let the request in; the stream keeps the cookie to ask again while it runs.
    let cookies = cookie_header(&headers).map(str::to_owned);
    let (replay, live) = shared.hub.subscribe();
    let hello: Arc<str> = json!({"event": "panel_hello", "replayed": replay.len()})
        .to_string()
        .into();
    let first = std::iter::once(hello).chain(replay).collect::<Vec<_>>();
    let first = stream::iter([Ok(batch_event(&first))]);
    let last_sent = tokio::time::Instant::now();
    let rest = stream::unfold(Some((live, last_sent)), move |state| {
        let shared = shared.clone();
        let cookies = cookies.clone();
        async move {
            use tokio::sync::broadcast::error::TryRecvError;
            let (mut live, last_sent) = state?;
            let allowed = || shared.access.still_allows(cookies.as_deref());
            // (A broadcast receiver's `recv` loses nothing when its timeout ends it.)
            let first = loop {
                match tokio::time::timeout(LOGIN_CHECK, live.recv()).await {
                    Ok(m) => break m.ok()?,
                    Err(_) if !allowed() => return None,
                    Err(_) => {}
                }
            };
            if !first.urgent && last_sent.elapsed() < BATCH {
                tokio::time::sleep_until(last_sent + BATCH).await;
            }
            if !allowed() {
                return None;
            }
            let mut batch = vec![first.text];
            loop {
                match live.try_recv() {
                    Ok(m) => batch.push(m.text),
                    Err(TryRecvError::Empty) => break,
                    // A page that fell too far behind ends with what it got; it reconnects
                    // and replays.
                    Err(_) => return Some((Ok(batch_event(&batch)), None)),
                }
            }
            let next = Some((live, tokio::time::Instant::now()));
            Some((Ok(batch_event(&batch)), next))
        }
    });
    Sse::new(first.chain(rest)).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// One event of the stream: the messages, each already JSON, as a JSON array.
fn batch_event(messages: &[Arc<str>]) -> SseEvent {
    let mut data = String::with_capacity(2 + messages.iter().map(|m| m.len() + 1).sum::<usize>());
    data.push('[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str(m);
    }
    data.push(']');
    SseEvent::default().data(data)
}

fn refused(r: Refused) -> Response {
    match r {
        Refused::Busy => error(
            StatusCode::CONFLICT,
            "busy",
            "a session is running: wait for it to end or stop it",
        ),
        // The files', station's or keys' problem, in the bench's words with its file and
        // line: for whoever keeps the bench, whatever the operator's language.
        Refused::Invalid(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "bench_refused", m),
        Refused::Order(p) => refusal(StatusCode::UNPROCESSABLE_ENTITY, p.to_string(), json!(p)),
        Refused::Serial {
            position,
            serial,
            refusal: why,
        } => {
            let mut code = json!(why);
            code["position"] = json!(position);
            refusal(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("serial number {serial:?} of position {position}: {why}"),
                code,
            )
        }
    }
}

async fn start(State(shared): Shd, Json(req): Json<StartRequest>) -> Response {
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || job::start(&s, req)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response(),
        Ok(Err(r)) => refused(r),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn retest(State(shared): Shd, Json(req): Json<RetestRequest>) -> Response {
    if !view::is_run_id(&req.run_id) {
        return error(StatusCode::BAD_REQUEST, "not_a_run_id", "not a run id");
    }
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || job::start_retest(&s, req)).await {
        Ok(Ok(())) => (StatusCode::ACCEPTED, Json(json!({"ok": true}))).into_response(),
        Ok(Err(r)) => refused(r),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

#[derive(Deserialize)]
struct Answer {
    id: u64,
    answer: String,
}

async fn answer(State(shared): Shd, Json(a): Json<Answer>) -> Response {
    match shared.job.answer(a.id, &a.answer) {
        Ok(normalised) => Json(json!({"ok": true, "answer": normalised})).into_response(),
        Err(AnswerError::NotAsked) => error(
            StatusCode::CONFLICT,
            "not_asked",
            "that question is no longer asked (answered, or the run ended)",
        ),
        // The bench's words and, for the page to say it in the operator's language, the
        // refusal's code and values.
        Err(AnswerError::Refused(why)) => refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            why.to_string(),
            json!(why),
        ),
    }
}

async fn stop(State(shared): Shd) -> Response {
    if shared.job.stop() {
        shared.hub.publish(json!({"event": "panel_stopping"}));
        Json(json!({"ok": true})).into_response()
    } else {
        error(StatusCode::CONFLICT, "not_running", "no session is running")
    }
}

async fn history(State(shared): Shd, Query(q): Query<HistoryQuery>) -> Response {
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || view::history(&s, &q, HISTORY_ROWS)).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(m)) => error(StatusCode::BAD_REQUEST, "bench_refused", m),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn verify(State(shared): Shd, Path(id): Path<String>) -> Response {
    if !view::is_run_id(&id) {
        return error(StatusCode::BAD_REQUEST, "not_a_run_id", "not a run id");
    }
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || view::verify(&s, &id)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn certificate(State(shared): Shd, Path(id): Path<String>) -> Response {
    if !view::is_run_id(&id) {
        return error(StatusCode::BAD_REQUEST, "not_a_run_id", "not a run id");
    }
    let path = shared.config.reports.join(&id).join("certificate.pdf");
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            );
            (headers, bytes).into_response()
        }
        Err(_) => refusal(
            StatusCode::NOT_FOUND,
            format!("run {id} has no certificate here"),
            json!({"code": "no_certificate", "run_id": id}),
        ),
    }
}
