//! The slow path: answering a question the cache could not.
//!
//! Order of authority: local records, then the most specific forward zone,
//! then the configured mode (recursion from the roots, or the upstreams).

pub mod dispatch;
pub mod local;
pub mod recursive;
pub mod upstream;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use serde::Serialize;

use crate::error::DnsError;
use crate::fastpath::wire::VIEW_SAFE_SEARCH;
use crate::filter::safesearch;
use crate::settings::{DnsSettings, Mode};
use local::LocalRecords;
use recursive::RecursiveBackend;
use upstream::{UpstreamSet, UpstreamStatus};

/// Longest TTL of a safe-search rewrite, so that turning safe search off
/// takes effect soon.
const SAFE_SEARCH_TTL: u32 = 300;

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
    /// The upstream that answered, when one did (for the query log).
    pub upstream: Option<String>,
}

enum Backend {
    Recursive(Box<RecursiveBackend>),
    Forward(UpstreamSet),
}

/// The resolver: local data, forward zones and the main backend.
pub struct Resolver {
    mode: Mode,
    local: LocalRecords,
    /// As written in the config; `local` also holds the derived PTRs.
    declared_local_records: usize,
    /// Sorted most specific first, so the first match wins.
    zones: Vec<(LowerName, UpstreamSet)>,
    backend: Backend,
    /// Upstream sets of filtering groups, view `i + 1` at index `i`.
    views: Vec<UpstreamSet>,
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
        let views = settings
            .views()
            .into_iter()
            .map(UpstreamSet::new)
            .collect::<Result<Vec<_>, DnsError>>()?;
        Ok(Self {
            views,
            mode: settings.mode,
            local: LocalRecords::new(&settings.local_records),
            declared_local_records: settings.local_records.len(),
            zones,
            backend,
        })
    }

    /// Resolves `question` in `view` (see [`crate::settings::DnsSettings::views`]),
    /// rewriting it first when the view asks for safe search and the name
    /// is one of the sites that enforce it.
    pub async fn resolve_in(&self, question: &Question, view: u8) -> Resolved {
        let upstreams = usize::from(view & !VIEW_SAFE_SEARCH)
            .checked_sub(1)
            .and_then(|i| self.views.get(i));
        if view & VIEW_SAFE_SEARCH != 0 {
            let lower = LowerName::from(&question.name);
            let mut wire = Vec::with_capacity(64);
            let target = lower
                .emit(&mut hickory_proto::serialize::binary::BinEncoder::new(
                    &mut wire,
                ))
                .ok()
                .and_then(|()| safesearch::target(&wire))
                .and_then(|t| Name::from_ascii(t).ok());
            if let Some(target) = target {
                let rewritten = Question {
                    name: target.clone(),
                    ..question.clone()
                };
                let mut resolved = self.resolve_with(&rewritten, upstreams).await;
                let ttl = resolved
                    .message
                    .answers
                    .iter()
                    .map(|r| r.ttl)
                    .min()
                    .unwrap_or(SAFE_SEARCH_TTL)
                    .min(SAFE_SEARCH_TTL);
                let cname =
                    Record::from_rdata(question.name.clone(), ttl, RData::CNAME(CNAME(target)));
                resolved.message.answers.insert(0, cname);
                resolved.message.queries.clear();
                resolved
                    .message
                    .add_query(Query::query(question.name.clone(), question.qtype));
                // The rewrite is ours, so nothing in it is validated.
                resolved.message.metadata.authentic_data = false;
                return resolved;
            }
        }
        self.resolve_with(question, upstreams).await
    }

    /// Resolves `question` in the service's own view.
    pub async fn resolve(&self, question: &Question) -> Resolved {
        self.resolve_with(question, None).await
    }

    async fn resolve_with(&self, question: &Question, view: Option<&UpstreamSet>) -> Resolved {
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
                let chased = Box::pin(self.resolve_with(&chase, view)).await;
                message.answers.extend(chased.message.answers);
                message.metadata.response_code = chased.message.metadata.response_code;
                message.metadata.authoritative = false;
                return Resolved {
                    message,
                    unreachable: chased.unreachable,
                    upstream: chased.upstream,
                };
            }
            return Resolved {
                message,
                unreachable: false,
                upstream: None,
            };
        }
        let lower = LowerName::from(&question.name);
        if let Some((_, upstreams)) = self.zones.iter().find(|(zone, _)| zone.zone_of(&lower)) {
            return forward(upstreams, query, question).await;
        }
        if let Some(upstreams) = view {
            return forward(upstreams, query, question).await;
        }
        match &self.backend {
            Backend::Recursive(recursor) => {
                let mut message = recursor
                    .resolve(query, question.dnssec_ok, question.checking_disabled)
                    .await;
                minimize(&mut message);
                // hickory reports unreachable servers as SERVFAIL; so does a
                // bogus answer, but that one is never replaced by stale data
                // because a bogus answer is not cached in the first place.
                let unreachable = message.metadata.response_code == ResponseCode::ServFail;
                Resolved {
                    message,
                    unreachable,
                    upstream: None,
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
            local_records: self.declared_local_records,
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

/// Minimal responses, as Unbound sends by default: the answer alone, or
/// for a negative answer the SOA, plus the NSEC/NSEC3 proofs (and their
/// signatures) a validating client needs. Referral NS records and glue only
/// bloat the answer, and their TTLs, often shorter than the answer's, would
/// cut the cache entry's life short.
pub fn minimize(message: &mut Message) {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    let negative = message.answers.is_empty();
    message.authorities.retain(|record| match &record.data {
        RData::SOA(_) => negative,
        RData::DNSSEC(DNSSECRData::NSEC(_) | DNSSECRData::NSEC3(_)) => true,
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            let covered = sig.input().type_covered;
            matches!(covered, RecordType::NSEC | RecordType::NSEC3)
                || (negative && covered == RecordType::SOA)
        }
        _ => false,
    });
    message.additionals.clear();
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
        upstream: None,
    }
}

async fn forward(upstreams: &UpstreamSet, query: Query, question: &Question) -> Resolved {
    match upstreams
        .forward(&query, question.dnssec_ok, question.checking_disabled)
        .await
    {
        Ok((mut message, upstream)) => {
            minimize(&mut message);
            message.metadata.id = 0;
            message.metadata.recursion_available = true;
            message.edns = None;
            Resolved {
                message,
                unreachable: false,
                upstream: Some(upstream),
            }
        }
        Err(upstream::AllUpstreamsFailed) => servfail(question, true),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{RData, Record};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn soa() -> Record {
        Record::from_rdata(
            name("lab."),
            300,
            RData::SOA(SOA::new(name("ns.lab."), name("h.lab."), 1, 1, 1, 1, 60)),
        )
    }

    #[test]
    fn minimal_positive_answers_drop_referral_data() {
        let mut message = Message::response(0, OpCode::Query);
        message.answers.push(Record::from_rdata(
            name("www.lab."),
            3600,
            RData::A(A(Ipv4Addr::new(10, 0, 0, 1))),
        ));
        message.authorities.push(Record::from_rdata(
            name("lab."),
            0,
            RData::NS(NS(name("ns.lab."))),
        ));
        message.authorities.push(soa());
        message.additionals.push(Record::from_rdata(
            name("ns.lab."),
            0,
            RData::A(A(Ipv4Addr::new(10, 0, 0, 2))),
        ));
        minimize(&mut message);
        assert_eq!(message.answers.len(), 1);
        assert!(message.authorities.is_empty());
        assert!(message.additionals.is_empty());
    }

    #[test]
    fn minimal_negative_answers_keep_the_soa() {
        let mut message = Message::response(0, OpCode::Query);
        message.metadata.response_code = ResponseCode::NXDomain;
        message.authorities.push(Record::from_rdata(
            name("lab."),
            300,
            RData::NS(NS(name("ns.lab."))),
        ));
        message.authorities.push(soa());
        minimize(&mut message);
        assert_eq!(message.authorities.len(), 1);
        assert_eq!(message.authorities[0].record_type(), RecordType::SOA);
    }
}
