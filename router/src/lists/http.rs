//! The list downloader: one HTTP/1.1 GET per connection with hyper's
//! low-level client, over TCP or rustls, following redirects, streaming the
//! body to a file with a size bound.

use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tracing::debug;
use xxhash_rust::xxh3::Xxh3Default;

use super::Refusal;
use super::url::{HttpUrl, Scheme};

/// Redirects followed before giving up.
pub(crate) const MAX_REDIRECTS: usize = 5;

const USER_AGENT: &str = concat!("routerd/", env!("CARGO_PKG_VERSION"));

/// The cache validators of a response (or of the stored copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a download produced.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// 304: the stored copy is current.
    NotModified(Validators),
    /// The body, written to the output file.
    Body {
        validators: Validators,
        bytes: u64,
        hash: u128,
    },
}

/// One download: where from, and what is known about the stored copy.
#[derive(Debug)]
pub(crate) struct Download<'a> {
    pub url: &'a str,
    pub ca_file: Option<&'a Path>,
    /// Sent as `If-None-Match` / `If-Modified-Since`.
    pub conditional: Option<&'a Validators>,
    pub max_bytes: u64,
}

/// Aborts the task driving a connection when the exchange is dropped, so
/// a timeout or an oversized body never leaves a socket behind.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Download<'_> {
    /// Fetches the list into `out` (which must be empty). The caller bounds
    /// the time taken.
    pub async fn run(&self, out: &mut tokio::fs::File) -> Result<Fetched, Refusal> {
        let mut url = HttpUrl::parse(self.url)?;
        let mut tls: Option<TlsConnector> = None;
        let mut redirects = 0;
        loop {
            let (response, driver) = self.send(&url, &mut tls).await?;
            let status = response.status();
            if is_redirect(status) {
                if redirects == MAX_REDIRECTS {
                    return Err(Refusal::TooManyRedirects);
                }
                redirects += 1;
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Refusal::RedirectWithoutLocation {
                        status: status.as_u16(),
                        url: url.to_string(),
                    })?;
                let next = url.join(location)?;
                // A list decides what the whole network can resolve: it must
                // not lose the integrity it was configured with.
                if url.scheme == Scheme::Https && next.scheme == Scheme::Http {
                    return Err(Refusal::Downgrade {
                        from: url.to_string(),
                        to: next.to_string(),
                    });
                }
                debug!(from = %url, to = %next, status = status.as_u16(), "list download redirected");
                drop((response, driver));
                url = next;
                continue;
            }
            if status == StatusCode::NOT_MODIFIED {
                return Ok(Fetched::NotModified(validators(response.headers())));
            }
            if !status.is_success() {
                return Err(Refusal::Status {
                    status: status_text(status),
                    url: url.to_string(),
                });
            }
            let result = self.stream_body(&url, response, out).await;
            drop(driver);
            return result;
        }
    }

    async fn send(
        &self,
        url: &HttpUrl,
        tls: &mut Option<TlsConnector>,
    ) -> Result<(Response<Incoming>, AbortOnDrop), Refusal> {
        let request = self.request(url)?;
        let tcp = connect(url).await?;
        match url.scheme {
            Scheme::Http => exchange(tcp, request, url).await,
            Scheme::Https => {
                let connector = match tls {
                    Some(connector) => connector.clone(),
                    None => tls.insert(connector(self.ca_file)?).clone(),
                };
                let server_name =
                    ServerName::try_from(url.host.clone()).map_err(|_| Refusal::ServerName {
                        host: url.host.clone(),
                    })?;
                let stream = connector
                    .connect(server_name, tcp)
                    .await
                    .map_err(|source| Refusal::Tls {
                        host: url.host.clone(),
                        source,
                    })?;
                exchange(stream, request, url).await
            }
        }
    }

    fn request(&self, url: &HttpUrl) -> Result<Request<Empty<Bytes>>, Refusal> {
        let mut builder = Request::get(&url.path)
            .header(header::HOST, url.host_header())
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT_ENCODING, "identity")
            .header(header::CONNECTION, "close");
        if let Some(conditional) = self.conditional {
            // A stored validator that is no longer a valid header value is
            // skipped: the download is then unconditional, which is safe.
            if let Some(etag) = conditional
                .etag
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                builder = builder.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = conditional
                .last_modified
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
            {
                builder = builder.header(header::IF_MODIFIED_SINCE, date);
            }
        }
        builder.body(Empty::new()).map_err(|e| Refusal::Request {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    async fn stream_body(
        &self,
        url: &HttpUrl,
        response: Response<Incoming>,
        out: &mut tokio::fs::File,
    ) -> Result<Fetched, Refusal> {
        let too_large = Refusal::TooLarge {
            max: self.max_bytes,
        };
        let declared = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_bytes) {
            return Err(too_large);
        }
        // Some servers compress regardless of Accept-Encoding; the bytes
        // would only be refused later as binary, with a less useful reason.
        if let Some(encoding) = response
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        {
            return Err(Refusal::Encoded {
                encoding: encoding.to_owned(),
            });
        }
        let validators = validators(response.headers());
        let mut body = response.into_body();
        let mut hasher = Xxh3Default::new();
        let mut bytes: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| Refusal::Http {
                host: url.host.clone(),
                detail: error_chain(&source),
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            bytes = bytes.saturating_add(data.len() as u64);
            if bytes > self.max_bytes {
                return Err(too_large);
            }
            hasher.update(&data);
            out.write_all(&data).await.map_err(Refusal::Write)?;
        }
        out.flush().await.map_err(Refusal::Write)?;
        out.sync_all().await.map_err(Refusal::Write)?;
        Ok(Fetched::Body {
            validators,
            bytes,
            hash: hasher.digest128(),
        })
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn validators(headers: &HeaderMap) -> Validators {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Validators {
        etag: text(header::ETAG),
        last_modified: text(header::LAST_MODIFIED),
    }
}

/// Tries each address the host resolves to, in order.
async fn connect(url: &HttpUrl) -> Result<TcpStream, Refusal> {
    let addrs = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|source| Refusal::Resolve {
            host: url.host.clone(),
            source,
        })?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                debug!(%addr, error = %e, "list download: connection failed");
                last_error = Some(e);
            }
        }
    }
    Err(match last_error {
        Some(source) => Refusal::Connect {
            target: url.authority(),
            source,
        },
        None => Refusal::NoAddress {
            host: url.host.clone(),
        },
    })
}

async fn exchange<S>(
    stream: S,
    request: Request<Empty<Bytes>>,
    url: &HttpUrl,
) -> Result<(Response<Incoming>, AbortOnDrop), Refusal>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error = |source: hyper::Error| Refusal::Http {
        host: url.host.clone(),
        detail: error_chain(&source),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "list download connection ended with an error");
        }
    }));
    let response = sender.send_request(request).await.map_err(http_error)?;
    Ok((response, driver))
}

/// hyper's own messages are terse ("connection error"); the cause is in
/// the sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The web PKI roots, plus the operator's own for a list served with a
/// private CA.
fn connector(ca_file: Option<&Path>) -> Result<TlsConnector, Refusal> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let ca_error = |reason: String| Refusal::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| ca_error(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no certificates in it".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Refusal::TlsConfig(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
