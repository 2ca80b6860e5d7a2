//! The control API: HTTP/1.1 with JSON over a Unix socket (mode 0600), so
//! only root (or whoever owns the socket) can steer the daemon.
//!
//! `GET /v1/status` returns [`crate::daemon::Status`];
//! `POST /v1/reload` re-reads the configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::UnixListener;
use tracing::warn;

use crate::daemon::Shared;

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
        .with_state(shared);
    if let Err(error) = axum::serve(listener, app).await {
        warn!(%error, "control API stopped");
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.status().await).into_response()
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
