//! `routerctl`'s side of the control API: HTTP/1.1 over the Unix socket.

use std::path::Path;

use anyhow::{Context, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// Sends one request and returns the status code and the JSON body.
pub async fn call(
    socket: &Path,
    method: &str,
    path: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    call_with(socket, method, path, None).await
}

/// Like [`call`], with a JSON request body.
pub async fn call_with(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        anyhow!(
            "routerd is not running (cannot connect to {}: {e})",
            socket.display()
        )
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("control API handshake failed")?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "routerd")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(serde_json::Value::to_string).unwrap_or_default(),
        )))
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("the control API did not answer")?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the control API's answer")?
        .to_bytes();
    let value = serde_json::from_slice(&body).with_context(|| {
        format!("the control API sent something that is not JSON (HTTP {status})")
    })?;
    Ok((status, value))
}
