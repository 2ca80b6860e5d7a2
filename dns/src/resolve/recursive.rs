//! Full recursion from the root hints, through hickory's recursor.
//!
//! hickory does the walking (QNAME minimisation, 0x20, DNSSEC validation);
//! this module builds it from our settings and turns its results, which
//! report NXDOMAIN and NODATA as errors, back into response messages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as NetDnsError, NetError};
use hickory_resolver::recursor::{
    DnssecConfig, DnssecPolicy, QNameMinimization, Recursor, RecursorError, RecursorOptions,
};
use tracing::debug;

use crate::error::DnsError;
use crate::settings::RecursionSettings;

/// The IANA root servers (named.root), used when no hints file is given.
/// Never reached from tests: the lab always supplies its own hints.
pub const IANA_ROOT_SERVERS: [IpAddr; 26] = [
    IpAddr::V4(Ipv4Addr::new(198, 41, 0, 4)),
    IpAddr::V4(Ipv4Addr::new(170, 247, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(192, 33, 4, 12)),
    IpAddr::V4(Ipv4Addr::new(199, 7, 91, 13)),
    IpAddr::V4(Ipv4Addr::new(192, 203, 230, 10)),
    IpAddr::V4(Ipv4Addr::new(192, 5, 5, 241)),
    IpAddr::V4(Ipv4Addr::new(192, 112, 36, 4)),
    IpAddr::V4(Ipv4Addr::new(198, 97, 190, 53)),
    IpAddr::V4(Ipv4Addr::new(192, 36, 148, 17)),
    IpAddr::V4(Ipv4Addr::new(192, 58, 128, 30)),
    IpAddr::V4(Ipv4Addr::new(193, 0, 14, 129)),
    IpAddr::V4(Ipv4Addr::new(199, 7, 83, 42)),
    IpAddr::V4(Ipv4Addr::new(202, 12, 27, 33)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x503, 0xba3e, 0, 0, 0, 0x2, 0x30)),
    IpAddr::V6(Ipv6Addr::new(0x2801, 0x1b8, 0x10, 0, 0, 0, 0, 0xb)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2, 0, 0, 0, 0, 0xc)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2d, 0, 0, 0, 0, 0xd)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0xa8, 0, 0, 0, 0, 0xe)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x2f, 0, 0, 0, 0, 0xf)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x12, 0, 0, 0, 0, 0xd0d)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x1, 0, 0, 0, 0, 0x53)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x7fe, 0, 0, 0, 0, 0, 0x53)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x503, 0xc27, 0, 0, 0, 0x2, 0x30)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x7fd, 0, 0, 0, 0, 0, 0x1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x500, 0x9f, 0, 0, 0, 0, 0x42)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdc3, 0, 0, 0, 0, 0, 0x35)),
];

/// Reads the root server addresses from a hints file in zone-file format.
pub fn read_root_hints(path: &Path) -> Result<Vec<IpAddr>, DnsError> {
    let hints_error = |reason: String| DnsError::RootHints {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| hints_error(e.to_string()))?;
    let (_origin, zone) = Parser::new(text, Some(path.to_path_buf()), Some(Name::root()))
        .parse()
        .map_err(|e| hints_error(e.to_string()))?;
    let addrs: Vec<IpAddr> = zone
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .filter_map(|record| record.data.ip_addr())
        .collect();
    if addrs.is_empty() {
        return Err(hints_error(
            "no A or AAAA records: expected lines such as `a.root-servers.net. 3600 IN A 198.41.0.4`"
                .into(),
        ));
    }
    Ok(addrs)
}

/// Reads a trust anchor file (DNSKEY records in zone-file format).
pub fn read_trust_anchor(path: &Path) -> Result<TrustAnchors, DnsError> {
    let anchors = TrustAnchors::from_file(path).map_err(|e| DnsError::TrustAnchor {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if anchors.is_empty() {
        return Err(DnsError::TrustAnchor {
            path: path.display().to_string(),
            reason: "no DNSKEY records: expected lines such as `. 3600 IN DNSKEY 257 3 13 ...`"
                .into(),
        });
    }
    Ok(anchors)
}

/// The recursive backend.
pub struct RecursiveBackend {
    recursor: Recursor<TokioRuntimeProvider>,
    validating: bool,
}

impl std::fmt::Debug for RecursiveBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecursiveBackend")
            .field("validating", &self.validating)
            .finish_non_exhaustive()
    }
}

impl RecursiveBackend {
    pub fn new(settings: &RecursionSettings) -> Result<Self, DnsError> {
        let roots = match &settings.root_hints {
            Some(path) => read_root_hints(path)?,
            None => IANA_ROOT_SERVERS.to_vec(),
        };
        let policy = if settings.dnssec {
            let trust_anchor = match &settings.trust_anchor {
                Some(path) => Some(Arc::new(read_trust_anchor(path)?)),
                None => None,
            };
            let mut config = DnssecConfig::default();
            config.trust_anchor = trust_anchor;
            DnssecPolicy::ValidateWithStaticKey(config)
        } else {
            DnssecPolicy::SecurityUnaware
        };
        let mut options = RecursorOptions {
            case_randomization: settings.case_randomisation,
            qname_minimization: if settings.qname_minimisation {
                QNameMinimization::Strict
            } else {
                QNameMinimization::Relaxed
            },
            allow_server: settings.allow_servers.clone(),
            ..RecursorOptions::default()
        };
        // Our own cache sits in front; hickory's caches only need to hold
        // the delegations and the records validation needs.
        options.response_cache_size = 65_536;
        let recursor = Recursor::new(
            &roots,
            policy,
            None,
            options,
            TokioRuntimeProvider::default(),
        )
        .map_err(|e| DnsError::Recursor(e.to_string()))?;
        Ok(Self {
            recursor,
            validating: settings.dnssec,
        })
    }

    /// Resolves one question into a response message (ID 0, no OPT).
    pub async fn resolve(&self, query: Query, dnssec_ok: bool, checking_disabled: bool) -> Message {
        let result = self
            .recursor
            .resolve(query.clone(), Instant::now(), true)
            .await;
        let mut response = Message::response(0, OpCode::Query);
        response.metadata.recursion_available = true;
        response.add_query(query.clone());
        match result {
            Ok(message) => {
                let summary = summarize(message.answers.iter(), None);
                response.metadata.response_code = message.metadata.response_code;
                response.answers = message.answers;
                response.authorities = message.authorities;
                response.additionals = message.additionals;
                self.apply_validation(&mut response, summary, checking_disabled);
            }
            Err(RecursorError::Net(NetError::Dns(NetDnsError::Nsec {
                response: nsec_response,
                proof,
                ..
            }))) => {
                response.metadata.response_code = nsec_response.response_code;
                response.authorities = nsec_response.authorities.clone();
                let summary = summarize(response.authorities.iter(), Some(proof));
                self.apply_validation(&mut response, summary, checking_disabled);
            }
            Err(RecursorError::Net(NetError::Dns(NetDnsError::DnssecBogus))) => {
                response.metadata.response_code = ResponseCode::ServFail;
            }
            Err(error) if error.is_no_records_found() || error.is_nx_domain() => {
                if error.is_nx_domain() {
                    response.metadata.response_code = ResponseCode::NXDomain;
                }
                let authorities = authorities_of(&error);
                let soa = error.into_soa();
                if let Some(soa) = soa {
                    response.authorities.push(soa.into_record_of_rdata());
                }
                response.authorities.extend(authorities);
                let summary = summarize(response.authorities.iter(), None);
                self.apply_validation(&mut response, summary, checking_disabled);
            }
            Err(error) => {
                debug!(%query, %error, "recursion failed");
                response.metadata.response_code = ResponseCode::ServFail;
            }
        }
        if query.query_type() != RecordType::ANY {
            response = response.maybe_strip_dnssec_records(dnssec_ok);
        }
        normalize(&mut response, query.name());
        response
    }

    /// RFC 4035 section 3.2: AD on secure data, SERVFAIL for bogus data unless
    /// the client set CD. The AD bit is kept in the cached copy and cleared
    /// at serve time for clients that asked for neither DO nor AD.
    fn apply_validation(&self, response: &mut Message, summary: Summary, checking_disabled: bool) {
        if !self.validating {
            return;
        }
        match summary {
            Summary::Secure => response.metadata.authentic_data = true,
            Summary::Bogus if !checking_disabled => {
                response.metadata.response_code = ResponseCode::ServFail;
                response.answers.clear();
                response.authorities.clear();
                response.additionals.clear();
            }
            _ => {}
        }
    }
}

/// Undoes what recursion leaves behind: names in the 0x20 case that hickory
/// sent upstream (clients must see the case they asked with, which the
/// serving path restores from the question when names are lower case and
/// compress against it), and CNAME chains out of order (stub resolvers such
/// as glibc expect the chain in order from the question name).
fn normalize(response: &mut Message, qname: &Name) {
    for record in response
        .answers
        .iter_mut()
        .chain(response.authorities.iter_mut())
        .chain(response.additionals.iter_mut())
    {
        record.name = record.name.to_lowercase();
        match &mut record.data {
            RData::CNAME(target) => target.0 = target.0.to_lowercase(),
            RData::NS(target) => target.0 = target.0.to_lowercase(),
            RData::PTR(target) => target.0 = target.0.to_lowercase(),
            _ => {}
        }
    }
    let mut chain = vec![qname.to_lowercase()];
    while chain.len() <= response.answers.len() {
        let Some(last) = chain.last() else { break };
        let next = response.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == *last => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) if !chain.contains(&target) => chain.push(target),
            _ => break,
        }
    }
    let position = |r: &Record| {
        chain
            .iter()
            .position(|n| *n == r.name)
            .unwrap_or(chain.len())
    };
    // Stable: records at the same step keep hickory's order (RRSIGs after
    // the set they cover).
    response.answers.sort_by_key(|r| position(r));
}

fn authorities_of(error: &RecursorError) -> Vec<Record> {
    let authorities = match error {
        RecursorError::Negative(data) => data.authorities.clone(),
        RecursorError::Net(NetError::Dns(NetDnsError::NoRecordsFound(no_records))) => {
            no_records.authorities.clone()
        }
        _ => None,
    };
    authorities
        .map(|records| {
            records
                .iter()
                .filter(|r| r.record_type() != RecordType::SOA)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    Secure,
    Insecure,
    Bogus,
}

fn summarize<'a>(records: impl Iterator<Item = &'a Record>, proof: Option<Proof>) -> Summary {
    let mut any = false;
    let mut all_secure = true;
    for record in records {
        if matches!(record.data, RData::DNSSEC(_)) {
            continue;
        }
        any = true;
        match record.proof {
            Proof::Bogus => return Summary::Bogus,
            Proof::Secure => {}
            _ => all_secure = false,
        }
    }
    match proof {
        Some(Proof::Bogus) => Summary::Bogus,
        Some(Proof::Secure) if all_secure => Summary::Secure,
        Some(_) => Summary::Insecure,
        None if any && all_secure => Summary::Secure,
        None => Summary::Insecure,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn normalize_orders_cname_chains_and_lowercases_names() {
        let mut response = Message::response(0, OpCode::Query);
        let cname = |from: &str, to: &str| {
            Record::from_rdata(name(from), 60, RData::CNAME(CNAME(name(to))))
        };
        response.answers = vec![
            cname("C3.plain.LAB.", "target.PLAIN.lab."),
            cname("c1.PLAIN.lab.", "C2.plain.lab."),
            Record::from_rdata(
                name("TARGET.plain.lab."),
                60,
                RData::A(A(Ipv4Addr::new(10, 53, 1, 1))),
            ),
            cname("c2.Plain.lab.", "c3.PLAIN.lab."),
        ];
        normalize(&mut response, &name("c1.plain.lab."));
        let owners: Vec<String> = response
            .answers
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(
            owners,
            [
                "c1.plain.lab.",
                "c2.plain.lab.",
                "c3.plain.lab.",
                "target.plain.lab."
            ]
        );
        assert_eq!(
            response.answers[2].data,
            RData::CNAME(CNAME(name("target.plain.lab.")))
        );
    }

    #[test]
    fn root_hints_without_addresses_are_rejected() {
        let dir = std::env::temp_dir().join(format!("hints-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root.hints");
        std::fs::write(&path, ". 3600 IN NS a.root.lab.\n").unwrap();
        let error = read_root_hints(&path).unwrap_err().to_string();
        assert!(error.contains("no A or AAAA records"), "{error}");
        std::fs::write(
            &path,
            ". 3600 IN NS a.root.lab.\na.root.lab. 3600 IN A 10.53.0.1\n",
        )
        .unwrap();
        assert_eq!(
            read_root_hints(&path).unwrap(),
            [IpAddr::V4(Ipv4Addr::new(10, 53, 0, 1))]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
