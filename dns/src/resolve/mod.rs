//! The slow path: answering a question the cache could not.
//!
//! Order of authority: local records, then the most specific forward zone,
//! then the configured mode (recursion from the roots, or the upstreams).

pub mod dispatch;
pub mod local;
pub mod recursive;
pub mod upstream;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{LowerName, Name, RecordType};
use serde::Serialize;

use crate::error::DnsError;
use crate::settings::{DnsSettings, Mode};
use local::LocalRecords;
use recursive::RecursiveBackend;
use upstream::{UpstreamSet, UpstreamStatus};

/// One question, as the resolver sees it.
#[derive(Debug, Clone)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

/// The result of resolving a question.
#[derive(Debug)]
pub struct Resolved {
    /// A response (ID 0, no OPT record): an answer, NXDOMAIN, NODATA or an error.
    pub message: Message,
    /// True when nothing upstream could be reached, so stale data is better
    /// than this answer (RFC 8767).
    pub unreachable: bool,
}

enum Backend {
    Recursive(Box<RecursiveBackend>),
    Forward(UpstreamSet),
}

/// The resolver: local data, forward zones and the main backend.
pub struct Resolver {
    mode: Mode,
    local: LocalRecords,
    /// Sorted most specific first, so the first match wins.
    zones: Vec<(LowerName, UpstreamSet)>,
    backend: Backend,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("mode", &self.mode)
            .field("local_records", &self.local.len())
            .field("forward_zones", &self.zones.len())
            .finish()
    }
}

/// What `routerctl status` shows about resolution.
#[derive(Debug, Clone, Serialize)]
pub struct ResolverStatus {
    pub mode: &'static str,
    pub dnssec: bool,
    pub local_records: usize,
    pub upstreams: Vec<UpstreamStatus>,
    pub forward_zones: Vec<ForwardZoneStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardZoneStatus {
    pub zone: String,
    pub upstreams: Vec<UpstreamStatus>,
}

impl Resolver {
    pub fn new(settings: &DnsSettings) -> Result<Self, DnsError> {
        let backend = match settings.mode {
            Mode::Recursive => {
                Backend::Recursive(Box::new(RecursiveBackend::new(&settings.recursion)?))
            }
            Mode::Forward => Backend::Forward(UpstreamSet::new(&settings.upstreams)?),
        };
        let mut zones = settings
            .forward_zones
            .iter()
            .map(|zone| {
                Ok((
                    LowerName::from(&zone.zone),
                    UpstreamSet::new(&zone.upstreams)?,
                ))
            })
            .collect::<Result<Vec<_>, DnsError>>()?;
        zones.sort_by_key(|(zone, _)| std::cmp::Reverse(zone.num_labels()));
        Ok(Self {
            mode: settings.mode,
            local: LocalRecords::new(&settings.local_records),
            zones,
            backend,
        })
    }

    pub async fn resolve(&self, question: &Question) -> Resolved {
        let query = Query::query(question.name.clone(), question.qtype);
        if let Some(mut message) = self.local.answer(&query) {
            // A local CNAME pointing outside the local records: stub
            // resolvers do not chase CNAMEs, so we do. The target is not
            // local, so this recurses at most once.
            if let Some(target) = dangling_cname(&message, question.qtype) {
                let chase = Question {
                    name: target,
                    ..question.clone()
                };
                let chased = Box::pin(self.resolve(&chase)).await;
                message.answers.extend(chased.message.answers);
                message.metadata.response_code = chased.message.metadata.response_code;
                message.metadata.authoritative = false;
                return Resolved {
                    message,
                    unreachable: chased.unreachable,
                };
            }
            return Resolved {
                message,
                unreachable: false,
            };
        }
        let lower = LowerName::from(&question.name);
        if let Some((_, upstreams)) = self.zones.iter().find(|(zone, _)| zone.zone_of(&lower)) {
            return forward(upstreams, query, question).await;
        }
        match &self.backend {
            Backend::Recursive(recursor) => {
                let message = recursor
                    .resolve(query, question.dnssec_ok, question.checking_disabled)
                    .await;
                // hickory reports unreachable servers as SERVFAIL; so does a
                // bogus answer, but that one is never replaced by stale data
                // because a bogus answer is not cached in the first place.
                let unreachable = message.metadata.response_code == ResponseCode::ServFail;
                Resolved {
                    message,
                    unreachable,
                }
            }
            Backend::Forward(upstreams) => forward(upstreams, query, question).await,
        }
    }

    pub fn status(&self) -> ResolverStatus {
        ResolverStatus {
            mode: match self.mode {
                Mode::Recursive => "recursive",
                Mode::Forward => "forward",
            },
            dnssec: matches!(&self.backend, Backend::Recursive(_)),
            local_records: self.local.len(),
            upstreams: match &self.backend {
                Backend::Forward(set) => set.status(),
                Backend::Recursive(_) => Vec::new(),
            },
            forward_zones: self
                .zones
                .iter()
                .map(|(zone, set)| ForwardZoneStatus {
                    zone: zone.to_string(),
                    upstreams: set.status(),
                })
                .collect(),
        }
    }
}

/// The target of a CNAME that ends the answer without its target's records.
fn dangling_cname(message: &Message, qtype: RecordType) -> Option<Name> {
    if qtype == RecordType::CNAME {
        return None;
    }
    let last = message.answers.last()?;
    match &last.data {
        hickory_proto::rr::RData::CNAME(target)
            if !message.answers.iter().any(|r| r.name == target.0) =>
        {
            Some(target.0.clone())
        }
        _ => None,
    }
}

/// A SERVFAIL for `question`; `unreachable` when nothing upstream answered.
pub fn servfail(question: &Question, unreachable: bool) -> Resolved {
    let mut message = Message::error_msg(0, OpCode::Query, ResponseCode::ServFail);
    message.add_query(Query::query(question.name.clone(), question.qtype));
    message.metadata.recursion_available = true;
    Resolved {
        message,
        unreachable,
    }
}

async fn forward(upstreams: &UpstreamSet, query: Query, question: &Question) -> Resolved {
    match upstreams
        .forward(&query, question.dnssec_ok, question.checking_disabled)
        .await
    {
        Ok(mut message) => {
            message.metadata.id = 0;
            message.metadata.recursion_available = true;
            message.edns = None;
            Resolved {
                message,
                unreachable: false,
            }
        }
        Err(upstream::AllUpstreamsFailed) => servfail(question, true),
    }
}
