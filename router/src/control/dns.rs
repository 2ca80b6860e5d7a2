//! `/v1/dns/...`: the query log, its statistics, the filter lists and the
//! explanation of a filtering decision.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dns::querylog::LogFilter;
use serde::Deserialize;
use serde_json::json;

use super::error_response;
use crate::daemon::Shared;

/// Entries `routerctl dns log` shows unless told otherwise.
const DEFAULT_LOG_LIMIT: usize = 50;
/// The most a single request may ask for.
const MAX_LOG_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhyRequest {
    name: String,
    client: Option<IpAddr>,
}

pub async fn why(State(shared): State<Arc<Shared>>, Json(request): Json<WhyRequest>) -> Response {
    let filtering = Arc::clone(&shared.filtering);
    // Finding the rule's line reads the stored lists: not on the runtime.
    let answer =
        tokio::task::spawn_blocking(move || filtering.why(&request.name, request.client)).await;
    match answer {
        Ok(Ok(why)) => Json(why).into_response(),
        Ok(Err(message)) => error_response(StatusCode::UNPROCESSABLE_ENTITY, &message),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "the explanation failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRequest {
    #[serde(default)]
    filter: LogFilter,
    /// Only entries after this sequence number, from memory (for --follow).
    after: Option<u64>,
    limit: Option<usize>,
}

pub async fn log(State(shared): State<Arc<Shared>>, Json(request): Json<LogRequest>) -> Response {
    let Some(log) = shared.query_log.clone() else {
        return no_log();
    };
    let limit = request
        .limit
        .unwrap_or(DEFAULT_LOG_LIMIT)
        .min(MAX_LOG_LIMIT);
    if let Some(after) = request.after {
        let (entries, newest) = log.recent(&request.filter, Some(after), limit);
        let entries: Vec<_> = entries
            .into_iter()
            .map(|(seq, entry)| json!({ "seq": seq, "entry": entry }))
            .collect();
        return Json(json!({ "entries": entries, "newest": newest })).into_response();
    }
    let searched =
        tokio::task::spawn_blocking(move || log.search(&request.filter, limit).map(|e| (e, log)))
            .await;
    match searched {
        Ok(Ok((mut entries, log))) => {
            // Oldest first, as a terminal reads a log.
            entries.reverse();
            let (_, newest) = log.recent(&LogFilter::default(), None, 0);
            let entries: Vec<_> = entries
                .into_iter()
                .map(|entry| json!({ "entry": entry }))
                .collect();
            Json(json!({ "entries": entries, "newest": newest })).into_response()
        }
        Ok(Err(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "the search failed"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopRequest {
    window_secs: Option<u64>,
    n: Option<usize>,
}

pub async fn top(State(shared): State<Arc<Shared>>, Json(request): Json<TopRequest>) -> Response {
    let Some(log) = shared.query_log.clone() else {
        return no_log();
    };
    let window = Duration::from_secs(request.window_secs.unwrap_or(3600));
    let n = request.n.unwrap_or(10).min(1000);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    match tokio::task::spawn_blocking(move || log.top(window, n, now_ms)).await {
        Ok(Ok(top)) => Json(top).into_response(),
        Ok(Err(e)) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "the statistics failed"),
    }
}

pub async fn lists(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.filtering.status()).into_response()
}

pub async fn refresh(State(shared): State<Arc<Shared>>) -> Response {
    let outcomes = shared.filtering.refresh_now().await;
    Json(json!({ "lists": outcomes, "status": shared.filtering.status() })).into_response()
}

fn no_log() -> Response {
    error_response(
        StatusCode::CONFLICT,
        "the query log is off: set [dns.query_log] enabled = true",
    )
}
