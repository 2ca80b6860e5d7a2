//! Forwarding to upstream resolvers over UDP, TCP, TLS and HTTPS, in order,
//! with per-upstream health.
//!
//! An upstream that fails a query is marked down and skipped; a background
//! prober asks it a small question every couple of seconds and marks it up
//! again once it answers, so no client query is spent (and kept waiting)
//! finding out whether a dead upstream is back. When every upstream is
//! down they are all tried anyway: a stale "down" mark must never be the
//! reason the house has no DNS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{DnsRequest, DnsRequestOptions, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::net::client::Client;
use hickory_resolver::net::h2::HttpsClientStream;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::tcp::TcpClientStream;
use hickory_resolver::net::udp::UdpClientStream;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::error::DnsError;
use crate::settings::{Protocol, UPSTREAM_TIMEOUT, Upstream};

/// How often an upstream that is down is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

type DnsClient = Client<TokioRuntimeProvider>;

/// Health of one upstream as shown by `routerctl status`.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    pub upstream: String,
    pub healthy: bool,
    pub queries: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub last_rtt_ms: Option<f64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Health {
    queries: u64,
    failures: u64,
    consecutive_failures: u32,
    down: bool,
    last_rtt: Option<Duration>,
    last_error: Option<String>,
}

struct Endpoint {
    config: Upstream,
    tls: Option<Arc<ClientConfig>>,
    /// Connected client for stream transports, reused across queries.
    client: tokio::sync::Mutex<Option<DnsClient>>,
    health: Mutex<Health>,
}

/// An ordered list of upstreams.
pub struct UpstreamSet {
    endpoints: Arc<[Endpoint]>,
}

impl std::fmt::Debug for UpstreamSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self.endpoints.iter().map(|e| e.config.label()).collect();
        f.debug_struct("UpstreamSet")
            .field("upstreams", &labels)
            .finish()
    }
}

/// Why forwarding failed: every upstream was tried.
#[derive(Debug)]
pub struct AllUpstreamsFailed;

impl UpstreamSet {
    pub fn new(upstreams: &[Upstream]) -> Result<Self, DnsError> {
        let endpoints = upstreams
            .iter()
            .map(|config| {
                let tls = match config.protocol {
                    Protocol::Tls | Protocol::Https => Some(tls_config(config)?),
                    Protocol::Udp | Protocol::Tcp => None,
                };
                Ok(Endpoint {
                    config: config.clone(),
                    tls,
                    client: tokio::sync::Mutex::new(None),
                    health: Mutex::new(Health::default()),
                })
            })
            .collect::<Result<Vec<_>, DnsError>>()?;
        let endpoints: Arc<[Endpoint]> = endpoints.into();
        // The prober lives as long as the set: it holds only a weak
        // reference and ends once the set is dropped (e.g. by a reload).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(probe_while_alive(Arc::downgrade(&endpoints)));
        }
        Ok(Self { endpoints })
    }

    pub fn status(&self) -> Vec<UpstreamStatus> {
        self.endpoints
            .iter()
            .map(|endpoint| {
                let health = lock(&endpoint.health);
                UpstreamStatus {
                    upstream: endpoint.config.label(),
                    healthy: !health.down,
                    queries: health.queries,
                    failures: health.failures,
                    consecutive_failures: health.consecutive_failures,
                    last_rtt_ms: health.last_rtt.map(|d| d.as_secs_f64() * 1000.0),
                    last_error: health.last_error.clone(),
                }
            })
            .collect()
    }

    /// Sends `query` to the first upstream that answers; returns its answer
    /// and the upstream's label.
    pub async fn forward(
        &self,
        query: &Query,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Result<(Message, String), AllUpstreamsFailed> {
        let up: Vec<&Endpoint> = self
            .endpoints
            .iter()
            .filter(|e| !lock(&e.health).down)
            .collect();
        let order = if up.is_empty() {
            self.endpoints.iter().collect()
        } else {
            up
        };
        for endpoint in order {
            match endpoint
                .timed_exchange(query, dnssec_ok, checking_disabled)
                .await
            {
                Ok(message) => return Ok((message, endpoint.config.label())),
                Err(error) => {
                    warn!(upstream = %endpoint.config.label(), %error, "upstream failed, trying the next");
                }
            }
        }
        Err(AllUpstreamsFailed)
    }
}

impl Endpoint {
    /// One exchange under the upstream timeout, with its outcome recorded
    /// in the endpoint's health.
    async fn timed_exchange(
        &self,
        query: &Query,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Result<Message, String> {
        let started = Instant::now();
        let result = tokio::time::timeout(
            UPSTREAM_TIMEOUT,
            self.exchange(query, dnssec_ok, checking_disabled),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()));
        {
            let mut health = lock(&self.health);
            health.queries += 1;
            match &result {
                Ok(_) => {
                    if health.down {
                        info!(upstream = %self.config.label(), "upstream answers again");
                    }
                    health.down = false;
                    health.consecutive_failures = 0;
                    health.last_rtt = Some(started.elapsed());
                }
                Err(error) => {
                    health.down = true;
                    health.failures += 1;
                    health.consecutive_failures += 1;
                    health.last_error = Some(error.clone());
                }
            }
        }
        if result.is_err() {
            // A broken stream connection is rebuilt on next use.
            *self.client.lock().await = None;
        }
        result
    }

    async fn exchange(
        &self,
        query: &Query,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Result<Message, String> {
        let mut message = Message::query();
        message.add_query(query.clone());
        message.metadata.recursion_desired = true;
        message.metadata.checking_disabled = checking_disabled;
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_set_dnssec_ok = dnssec_ok;
        options.recursion_desired = true;
        let request = DnsRequest::new(message, options);

        let client = self.client().await?;
        let response = client
            .send(request.clone())
            .first_answer()
            .await
            .map_err(|e| e.to_string())?
            .into_message();
        if response.metadata.truncation && self.config.protocol == Protocol::Udp {
            debug!(upstream = %self.config.label(), "truncated, retrying over TCP");
            let tcp = connect(&self.config, Protocol::Tcp, None).await?;
            return tcp
                .send(request)
                .first_answer()
                .await
                .map(|r| r.into_message())
                .map_err(|e| e.to_string());
        }
        Ok(response)
    }

    async fn client(&self) -> Result<DnsClient, String> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client = connect(&self.config, self.config.protocol, self.tls.clone()).await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

async fn connect(
    config: &Upstream,
    protocol: Protocol,
    tls: Option<Arc<ClientConfig>>,
) -> Result<DnsClient, String> {
    let provider = TokioRuntimeProvider::default();
    let addr = config.address;
    let server_name = config
        .tls_name
        .clone()
        .unwrap_or_else(|| addr.ip().to_string());
    match (protocol, tls) {
        (Protocol::Udp, _) => {
            let stream = UdpClientStream::builder(addr, provider)
                .with_timeout(Some(UPSTREAM_TIMEOUT))
                .build();
            let (client, background) = Client::from_sender(stream);
            tokio::spawn(background);
            Ok(client)
        }
        (Protocol::Tcp, _) => {
            let (stream, handle) =
                TcpClientStream::new(addr, None, Some(UPSTREAM_TIMEOUT), provider);
            let stream = stream.await.map_err(|e| e.to_string())?;
            let (client, background) = Client::with_timeout(stream, handle, UPSTREAM_TIMEOUT);
            tokio::spawn(background);
            Ok(client)
        }
        (Protocol::Tls, Some(tls)) => {
            let name = rustls_pki_types::ServerName::try_from(server_name)
                .map_err(|e| format!("bad TLS name: {e}"))?;
            let (stream, handle) =
                hickory_resolver::net::tls::tls_client_connect(addr, name, tls, provider);
            let stream = stream.await.map_err(|e| e.to_string())?;
            let (client, background) = Client::with_timeout(stream, handle, UPSTREAM_TIMEOUT);
            tokio::spawn(background);
            Ok(client)
        }
        (Protocol::Https, Some(tls)) => {
            let mut builder = HttpsClientStream::builder(tls, provider);
            builder.request_timeout(UPSTREAM_TIMEOUT);
            let stream = builder
                .build(addr, server_name.into(), "/dns-query".into())
                .await
                .map_err(|e| e.to_string())?;
            let (client, background) = Client::from_sender(stream);
            tokio::spawn(background);
            Ok(client)
        }
        (Protocol::Tls | Protocol::Https, None) => Err("TLS not configured".into()),
    }
}

/// Probes every upstream that is down, every [`PROBE_INTERVAL`], until the
/// set it belongs to is dropped. Any answer, even REFUSED, proves the
/// upstream is reachable again.
async fn probe_while_alive(endpoints: std::sync::Weak<[Endpoint]>) {
    let probe = Query::query(Name::root(), RecordType::NS);
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let Some(endpoints) = endpoints.upgrade() else {
            return;
        };
        for endpoint in endpoints.iter() {
            if lock(&endpoint.health).down {
                let _ = endpoint.timed_exchange(&probe, false, false).await;
            }
        }
    }
}

fn tls_config(upstream: &Upstream) -> Result<Arc<ClientConfig>, DnsError> {
    let tls_error = |reason: String| DnsError::Tls {
        upstream: upstream.label(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &upstream.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_error(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(hickory_resolver::net::tls::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if upstream.protocol == Protocol::Https {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(Arc::new(config))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind: still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
