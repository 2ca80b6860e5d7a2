//! Endpoint names resolved with the appliance's own resolver: one query to
//! routerd's DNS service, so a tunnel's endpoint follows the same answers
//! (local records, forward zones, cache) the house gets, and its TTL.
//! [`ask`], the query itself, also serves VRRP's health probes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds of how long an answer is trusted before asking again.
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(3600);

/// An endpoint's address and how long it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub address: SocketAddr,
    pub ttl: Duration,
}

/// Where routerd's own DNS service answers, from its first listen address
/// that is always there (a wildcard address is asked on loopback; a VRRP
/// virtual address, in `floating`, is only there on the master).
pub fn own_server(listen: &[SocketAddr], floating: &[IpAddr]) -> Option<SocketAddr> {
    let first = listen.iter().find(|l| !floating.contains(&l.ip()))?;
    let ip = match first.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, first.port()))
}

/// Resolves `host` through `server`: its IPv4 address, else its IPv6 one.
pub async fn resolve(server: SocketAddr, host: &str, port: u16) -> Result<Resolved, String> {
    let name = Name::from_ascii(host)
        .map(|mut n| {
            n.set_fqdn(true);
            n
        })
        .map_err(|e| format!("{host} is not a domain name: {e}"))?;
    let mut last_error = String::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        match query(server, &name, rtype).await {
            Ok(Some((ip, ttl))) => {
                return Ok(Resolved {
                    address: SocketAddr::new(ip, port),
                    ttl: ttl.clamp(MIN_TTL, MAX_TTL),
                });
            }
            Ok(None) => last_error = format!("{host} has no A or AAAA record"),
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
) -> Result<Option<(IpAddr, Duration)>, String> {
    let reply = ask(server, name, rtype, QUERY_TIMEOUT).await?;
    match reply.metadata.response_code {
        ResponseCode::NoError => Ok(first_address(&reply)),
        ResponseCode::NXDomain => Err(format!("{name} does not exist (NXDOMAIN)")),
        code => Err(format!("{server} answered {code} for {name}")),
    }
}

/// One recursive query for `name`/`rtype` to `server` (routerd's own DNS
/// service): the reply with our id from that server, whatever its rcode,
/// or an error when none comes within `timeout`. VRRP's health probes
/// ask through it too.
pub async fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot open a socket to ask {server}: {e}"))?;
    let id: u16 = rand::random();
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), rtype));
    let bytes = message
        .to_vec()
        .map_err(|e| format!("cannot encode a query for {name}: {e}"))?;
    socket
        .send_to(&bytes, server)
        .await
        .map_err(|e| format!("cannot ask {server} for {name}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf))
            .await
            .map_err(|_| format!("{server} did not answer for {name} within {timeout:?}"))?
            .map_err(|e| format!("reading the answer for {name}: {e}"))?;
        let (len, from) = received;
        if from != server {
            continue;
        }
        let Ok(reply) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        if reply.metadata.id == id {
            return Ok(reply);
        }
    }
}

/// The first address in the answer (after any CNAMEs), with the smallest
/// TTL of the records that led to it.
fn first_address(reply: &Message) -> Option<(IpAddr, Duration)> {
    let ttl = reply.answers.iter().map(|r| r.ttl).min()?;
    reply.answers.iter().find_map(|record| {
        let ip = match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
            _ => return None,
        };
        Some((ip, Duration::from_secs(u64::from(ttl))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_asked_on_loopback() {
        let listen: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap_or_else(|_| unreachable!())];
        assert_eq!(own_server(&listen, &[]), "127.0.0.1:53".parse().ok());
        let listen: Vec<SocketAddr> = vec!["[::]:5353".parse().unwrap_or_else(|_| unreachable!())];
        assert_eq!(own_server(&listen, &[]), "[::1]:5353".parse().ok());
        let listen: Vec<SocketAddr> =
            vec!["10.53.0.71:53".parse().unwrap_or_else(|_| unreachable!())];
        assert_eq!(own_server(&listen, &[]), "10.53.0.71:53".parse().ok());
        assert_eq!(own_server(&[], &[]), None);
        let listen: Vec<SocketAddr> = vec![
            "10.53.0.250:53".parse().unwrap_or_else(|_| unreachable!()),
            "127.0.0.1:53".parse().unwrap_or_else(|_| unreachable!()),
        ];
        let floating = ["10.53.0.250".parse().unwrap_or_else(|_| unreachable!())];
        assert_eq!(own_server(&listen, &floating), "127.0.0.1:53".parse().ok());
    }
}
