//! Local records: names the operator declares in the config, answered
//! authoritatively, with PTR records derived from every A and AAAA.

use std::collections::HashMap;

use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::settings::{LocalData, LocalRecord};

/// CNAME hops followed within the local records.
const MAX_LOCAL_CNAME_CHAIN: usize = 8;

/// TTL of the synthetic SOA that makes NODATA answers cacheable.
const NEGATIVE_TTL: u32 = 60;

/// All local records, by owner name.
#[derive(Debug, Default)]
pub struct LocalRecords {
    by_name: HashMap<LowerName, Vec<Record>>,
}

impl LocalRecords {
    pub fn new(records: &[LocalRecord]) -> Self {
        let mut by_name: HashMap<LowerName, Vec<Record>> = HashMap::new();
        for local in records {
            let rdata = match &local.data {
                LocalData::A(ip) => RData::A(A(*ip)),
                LocalData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
                LocalData::Cname(target) => RData::CNAME(CNAME(target.clone())),
                LocalData::Txt(text) => RData::TXT(TXT::new(vec![text.clone()])),
            };
            let reverse = match &local.data {
                LocalData::A(ip) => Some(Name::from(std::net::IpAddr::V4(*ip))),
                LocalData::Aaaa(ip) => Some(Name::from(std::net::IpAddr::V6(*ip))),
                _ => None,
            };
            by_name
                .entry(LowerName::from(&local.name))
                .or_default()
                .push(Record::from_rdata(local.name.clone(), local.ttl, rdata));
            if let Some(reverse) = reverse {
                let ptr = Record::from_rdata(
                    reverse.clone(),
                    local.ttl,
                    RData::PTR(PTR(local.name.clone())),
                );
                let slot = by_name.entry(LowerName::from(&reverse)).or_default();
                // The first name declared for an address owns its PTR.
                if slot.iter().all(|r| r.record_type() != RecordType::PTR) {
                    slot.push(ptr);
                }
            }
        }
        Self { by_name }
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// The authoritative answer for `query`, or `None` when the name is not
    /// local. A local name without the asked type gets NODATA; a CNAME is
    /// returned for any type, as an authoritative server would.
    pub fn answer(&self, query: &Query) -> Option<Message> {
        let mut records = self.by_name.get(&LowerName::from(query.name()))?;
        let mut response = Message::response(0, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_available = true;
        response.add_query(query.clone());
        let qtype = query.query_type();
        // Follow CNAMEs that stay among the local records, as an
        // authoritative server does within its zone; a bounded walk, since
        // the operator may have written a loop.
        for _ in 0..MAX_LOCAL_CNAME_CHAIN {
            let matching = records.iter().filter(|r| {
                qtype == RecordType::ANY
                    || r.record_type() == qtype
                    || r.record_type() == RecordType::CNAME
            });
            response.answers.extend(matching.cloned());
            let target = records.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if qtype != RecordType::CNAME => Some(target.0.clone()),
                _ => None,
            });
            match target.and_then(|t| self.by_name.get(&LowerName::from(&t))) {
                Some(next)
                    if !response
                        .answers
                        .iter()
                        .any(|r| next.first().is_some_and(|n| n.name == r.name)) =>
                {
                    records = next
                }
                _ => break,
            }
        }
        if response.answers.is_empty() {
            response.metadata.response_code = ResponseCode::NoError;
            response.authorities.push(synthetic_soa(query.name()));
        }
        Some(response)
    }
}

fn synthetic_soa(name: &Name) -> Record {
    let soa = SOA::new(
        name.clone(),
        Name::from_ascii("hostmaster.invalid.").unwrap_or_else(|_| Name::root()),
        1,
        3600,
        600,
        86400,
        NEGATIVE_TTL,
    );
    Record::from_rdata(name.clone(), NEGATIVE_TTL, RData::SOA(soa))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn records() -> LocalRecords {
        LocalRecords::new(&[LocalRecord {
            name: Name::from_ascii("nas.home.arpa.").unwrap(),
            data: LocalData::A(Ipv4Addr::new(192, 168, 1, 10)),
            ttl: 300,
        }])
    }

    #[test]
    fn answers_a_and_derived_ptr() {
        let local = records();
        let a = local
            .answer(&Query::query(
                Name::from_ascii("NAS.home.arpa.").unwrap(),
                RecordType::A,
            ))
            .unwrap();
        assert_eq!(a.answers.len(), 1);
        let ptr = local
            .answer(&Query::query(
                Name::from_ascii("10.1.168.192.in-addr.arpa.").unwrap(),
                RecordType::PTR,
            ))
            .unwrap();
        assert_eq!(
            ptr.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("nas.home.arpa.").unwrap()))
        );
    }

    #[test]
    fn local_cnames_are_chased_and_loops_end() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let local = LocalRecords::new(&[
            LocalRecord {
                name: name("nas.home.arpa."),
                data: LocalData::A(Ipv4Addr::new(192, 168, 1, 10)),
                ttl: 300,
            },
            LocalRecord {
                name: name("media.home.arpa."),
                data: LocalData::Cname(name("nas.home.arpa.")),
                ttl: 300,
            },
            LocalRecord {
                name: name("loop1.home.arpa."),
                data: LocalData::Cname(name("loop2.home.arpa.")),
                ttl: 300,
            },
            LocalRecord {
                name: name("loop2.home.arpa."),
                data: LocalData::Cname(name("loop1.home.arpa.")),
                ttl: 300,
            },
        ]);
        let chased = local
            .answer(&Query::query(name("media.home.arpa."), RecordType::A))
            .unwrap();
        let types: Vec<RecordType> = chased.answers.iter().map(Record::record_type).collect();
        assert_eq!(types, [RecordType::CNAME, RecordType::A]);
        let looped = local
            .answer(&Query::query(name("loop1.home.arpa."), RecordType::A))
            .unwrap();
        assert_eq!(looped.answers.len(), 2);
    }

    #[test]
    fn other_type_is_nodata_and_unknown_name_is_not_local() {
        let local = records();
        let aaaa = local
            .answer(&Query::query(
                Name::from_ascii("nas.home.arpa.").unwrap(),
                RecordType::AAAA,
            ))
            .unwrap();
        assert!(aaaa.answers.is_empty());
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert_eq!(aaaa.authorities.len(), 1);
        assert!(
            local
                .answer(&Query::query(
                    Name::from_ascii("tv.home.arpa.").unwrap(),
                    RecordType::A
                ))
                .is_none()
        );
    }
}
