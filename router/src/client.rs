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
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "routerd")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(serde_json::Value::to_string).unwrap_or_default(),
        )))
        .context("building the request")?;
    let (status, body) = exchange(stream, request, usize::MAX)
        .await
        .context("the control API")?;
    let value = serde_json::from_slice(&body).with_context(|| {
        format!("the control API sent something that is not JSON (HTTP {status})")
    })?;
    Ok((status, value))
}

/// One HTTP/1.1 request on a connected stream: the status and the body,
/// which may be at most `limit` bytes.
pub async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> anyhow::Result<(u16, Bytes)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("handshake failed")?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await.context("no answer")?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}
