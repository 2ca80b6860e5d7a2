//! The control API: HTTP/1.1 with JSON over a Unix socket (mode 0600), so
//! only root (or whoever owns the socket) can steer the daemon.
//!
//! `GET /v1/status` returns [`crate::daemon::Status`];
//! `POST /v1/reload` re-reads the configuration;
//! `GET /v1/policy`, `POST /v1/policy/check`, `POST /v1/policy/apply`,
//! `POST /v1/policy/confirm` and `GET /v1/policy/stats` drive the firewall;
//! `POST /v1/dns/why`, `/v1/dns/log`, `/v1/dns/top`, `/v1/dns/refresh` and
//! `GET /v1/dns/lists` cover filtering and the query log;
//! `GET /v1/wireguard` reports tunnels and peers; `GET /v1/bgp` and
//! `GET /v1/bgp/routes?prefix=P` the BGP sessions and candidate routes,
//! `POST /v1/bgp/reset` restarts one session; `GET /v1/pair` and
//! `POST /v1/pair/sync` the primary/standby pair.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::UnixListener;
use tracing::warn;

use crate::daemon::Shared;

mod dns;

/// Binds the control socket, replacing a stale socket file but refusing to
/// steal one that a running daemon still answers on.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another routerd is running: its control socket {} answers",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to mode 0600", path.display()))?;
    Ok(listener)
}

pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/policy", get(policy_show))
        .route("/v1/policy/check", post(policy_check))
        .route("/v1/policy/apply", post(policy_apply))
        .route("/v1/policy/confirm", post(policy_confirm))
        .route("/v1/policy/stats", get(policy_stats))
        .route("/v1/dns/why", post(dns::why))
        .route("/v1/dns/log", post(dns::log))
        .route("/v1/dns/top", post(dns::top))
        .route("/v1/dns/lists", get(dns::lists))
        .route("/v1/dns/refresh", post(dns::refresh))
        .route("/v1/wireguard", get(wireguard))
        .route("/v1/vrrp", get(vrrp_instances))
        .route("/v1/pair", get(pair_status))
        .route("/v1/pair/sync", post(pair_sync))
        .route("/v1/bgp", get(bgp_peers))
        .route("/v1/bgp/routes", get(bgp_routes))
        .route("/v1/bgp/reset", post(bgp_reset))
        .with_state(shared);
    if let Err(error) = axum::serve(listener, app).await {
        warn!(%error, "control API stopped");
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.status().await).into_response()
}

fn no_pair() -> Response {
    error_response(
        StatusCode::CONFLICT,
        "this node is not in a pair: add a [pair] section to its configuration",
    )
}

/// The pair's status with this node's VRRP instances, the other half of
/// what an operator asks "which node holds what".
async fn pair_status(State(shared): State<Arc<Shared>>) -> Response {
    let Some(status) = shared.pair_status() else {
        return no_pair();
    };
    let vrrp: Vec<_> = shared
        .vrrp_status()
        .await
        .map(|v| v.instances)
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            json!({
                "name": i.name,
                "state": i.state,
                "priority": i.priority,
                "configured_priority": i.configured_priority,
                "master": i.master,
            })
        })
        .collect();
    let mut body = serde_json::to_value(status).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("vrrp".into(), serde_json::Value::Array(vrrp));
    }
    Json(body).into_response()
}

async fn pair_sync(State(shared): State<Arc<Shared>>) -> Response {
    if shared.pair_sync_now() {
        Json(json!({ "message": "asking the primary now" })).into_response()
    } else {
        no_pair()
    }
}

async fn vrrp_instances(State(shared): State<Arc<Shared>>) -> Response {
    match shared.vrrp_status().await {
        Some(status) => Json(status).into_response(),
        None => error_response(
            StatusCode::CONFLICT,
            "routerd runs no VRRP instance: add a [vrrp] section to its configuration",
        ),
    }
}

fn no_bgp() -> Response {
    error_response(
        StatusCode::CONFLICT,
        "routerd runs no BGP speaker: add a [bgp] section to its configuration",
    )
}

async fn bgp_peers(State(shared): State<Arc<Shared>>) -> Response {
    match shared.bgp_status().await {
        Some(status) => Json(status).into_response(),
        None => no_bgp(),
    }
}

#[derive(Debug, Deserialize)]
struct RoutesQuery {
    prefix: Option<String>,
}

async fn bgp_routes(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<RoutesQuery>,
) -> Response {
    let prefix = match query.prefix.as_deref().map(parse_prefix).transpose() {
        Ok(prefix) => prefix,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let bgp = shared.bgp.lock().await;
    let Some(service) = bgp.as_ref() else {
        return no_bgp();
    };
    match service.routes(prefix).await {
        Some(report) => Json(report).into_response(),
        None => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the BGP speaker is not running",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ResetRequest {
    peer: String,
}

async fn bgp_reset(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<ResetRequest>,
) -> Response {
    let bgp = shared.bgp.lock().await;
    let Some(service) = bgp.as_ref() else {
        return no_bgp();
    };
    match service.reset(&request.peer).await {
        Some(true) => {
            Json(json!({ "message": format!("session with {} restarted", request.peer) }))
                .into_response()
        }
        Some(false) => error_response(
            StatusCode::NOT_FOUND,
            &format!("no BGP peer named {}", request.peer),
        ),
        None => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the BGP speaker is not running",
        ),
    }
}

/// "10.0.0.0/8", or a bare address as a host prefix.
fn parse_prefix(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("\"{text}\" is not a prefix: expected e.g. 10.61.2.0/24"))
}

async fn wireguard(State(shared): State<Arc<Shared>>) -> Response {
    let mut wireguard = shared.wireguard.lock().await;
    wireguard.refresh().await;
    Json(wireguard.status()).into_response()
}

async fn reload(State(shared): State<Arc<Shared>>) -> Response {
    match shared.reload().await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": message })),
        )
            .into_response(),
    }
}

fn no_firewall() -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({
            "error": "routerd manages no firewall: add a [policies] section to its configuration"
        })),
    )
        .into_response()
}

async fn policy_show(State(shared): State<Arc<Shared>>) -> Response {
    let slot = shared.firewall.lock().await;
    let Some(firewall) = slot.as_ref() else {
        return no_firewall();
    };
    let live = match firewall.live_text() {
        Ok(live) => live,
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    Json(json!({ "status": firewall.status(), "nft_text": live })).into_response()
}

#[derive(Debug, Deserialize)]
struct CheckRequest {
    dir: Option<PathBuf>,
}

async fn policy_check(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<CheckRequest>,
) -> Response {
    let slot = shared.firewall.lock().await;
    let Some(firewall) = slot.as_ref() else {
        return no_firewall();
    };
    let report = tokio::task::block_in_place(|| firewall.check(request.dir.as_deref()));
    let code = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, Json(report)).into_response()
}

#[derive(Debug, Deserialize)]
struct ApplyRequest {
    confirm_secs: Option<u64>,
}

async fn policy_apply(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<ApplyRequest>,
) -> Response {
    let mut slot = shared.firewall.lock().await;
    let Some(firewall) = slot.as_mut() else {
        return no_firewall();
    };
    let confirm = request.confirm_secs.map(Duration::from_secs);
    let outcome = firewall.apply(confirm).await;
    drop(slot);
    match outcome {
        Ok(report) => {
            if let (Some(id), Some(confirm)) = (report.pending_id, confirm) {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    tokio::time::sleep(confirm).await;
                    if let Some(firewall) = shared.firewall.lock().await.as_mut() {
                        firewall.roll_back(id);
                    }
                });
            }
            Json(report).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(e)).into_response(),
    }
}

async fn policy_confirm(State(shared): State<Arc<Shared>>) -> Response {
    let mut slot = shared.firewall.lock().await;
    let Some(firewall) = slot.as_mut() else {
        return no_firewall();
    };
    match firewall.confirm() {
        Ok(message) => Json(json!({ "message": message })).into_response(),
        Err(message) => error_response(StatusCode::CONFLICT, &message),
    }
}

async fn policy_stats(State(shared): State<Arc<Shared>>) -> Response {
    let slot = shared.firewall.lock().await;
    let Some(firewall) = slot.as_ref() else {
        return no_firewall();
    };
    match firewall.stats() {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

fn error_response(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}
