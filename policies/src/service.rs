//! The small languages inside rule fields: services, addresses, limits.

use ipnet::IpNet;

use crate::model::{AddressMatch, IcmpFamily, Limit, Per, Service, Transport};

/// Names an operator can use instead of protocol/port.
const NAMED: &[(&str, &[&str])] = &[
    ("ssh", &["tcp/22"]),
    ("dns", &["udp/53", "tcp/53"]),
    ("http", &["tcp/80"]),
    ("https", &["tcp/443", "udp/443"]),
    ("ntp", &["udp/123"]),
    ("mdns", &["udp/5353"]),
    ("mqtt", &["tcp/1883", "tcp/8883"]),
    ("ping", &["icmp/echo-request", "icmpv6/echo-request"]),
];

/// ICMP types nft knows by name, for each family.
const ICMP_TYPES: &[&str] = &[
    "echo-reply",
    "destination-unreachable",
    "redirect",
    "echo-request",
    "router-advertisement",
    "router-solicitation",
    "time-exceeded",
    "parameter-problem",
    "timestamp-request",
    "timestamp-reply",
];
const ICMPV6_TYPES: &[&str] = &[
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "echo-request",
    "echo-reply",
    "mld-listener-query",
    "mld-listener-report",
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
];

/// Parses one service: a name, `tcp/22`, `udp/1000-2000`, `icmp/echo-request`.
pub fn parse_service(text: &str) -> Result<Vec<Service>, String> {
    let text = text.trim();
    if let Some((_, specs)) = NAMED.iter().find(|(name, _)| *name == text) {
        return specs.iter().map(|spec| parse_one(spec)).collect();
    }
    parse_one(text).map(|service| vec![service])
}

fn parse_one(text: &str) -> Result<Service, String> {
    let expected = || {
        let names: Vec<&str> = NAMED.iter().map(|(name, _)| *name).collect();
        format!(
            "expected a service such as \"tcp/22\", \"udp/60000-61000\", \"icmp/echo-request\" \
             or one of {}, found \"{text}\"",
            names.join(", ")
        )
    };
    let (protocol, rest) = text.split_once('/').ok_or_else(expected)?;
    match protocol {
        "tcp" | "udp" => {
            let transport = if protocol == "tcp" {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            let (first, last) = match rest.split_once('-') {
                Some((first, last)) => (parse_port(first, text)?, parse_port(last, text)?),
                None => {
                    let port = parse_port(rest, text)?;
                    (port, port)
                }
            };
            if first > last {
                return Err(format!(
                    "the port range in \"{text}\" runs backwards; write \"{protocol}/{last}-{first}\""
                ));
            }
            Ok(Service::Ports {
                transport,
                first,
                last,
            })
        }
        "icmp" | "icmpv6" => {
            let (family, known) = if protocol == "icmp" {
                (IcmpFamily::V4, ICMP_TYPES)
            } else {
                (IcmpFamily::V6, ICMPV6_TYPES)
            };
            if !known.contains(&rest) {
                return Err(format!(
                    "\"{rest}\" is not an {protocol} type; expected one of {}",
                    known.join(", ")
                ));
            }
            Ok(Service::Icmp {
                family,
                kind: rest.to_string(),
            })
        }
        _ => Err(expected()),
    }
}

fn parse_port(text: &str, whole: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "\"{text}\" in \"{whole}\" is not a port; expected 1 to 65535"
        )),
        Ok(port) => Ok(port),
    }
}

/// Parses an address condition: `10.0.0.5`, `10.0.0.0/24`, `fd00::/64`, `@set`.
pub fn parse_address(text: &str) -> Result<AddressMatch, String> {
    let text = text.trim();
    if let Some(name) = text.strip_prefix('@') {
        return Ok(AddressMatch::Set(name.to_string()));
    }
    parse_net(text).map(AddressMatch::Net)
}

/// Parses an address or a network; a bare address is a host network.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!(
                "\"{text}\" has host bits set; the network is \"{}\"",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    text.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| {
            format!(
                "expected an address, a network such as \"192.168.40.0/24\" or \"@set\", found \"{text}\""
            )
        })
}

/// Parses a rate limit: `10/second`, `100/minute`.
pub fn parse_limit(text: &str) -> Result<Limit, String> {
    let expected =
        || format!("expected a rate such as \"10/second\" or \"100/minute\", found \"{text}\"");
    let (rate, per) = text.split_once('/').ok_or_else(expected)?;
    let rate: u32 = rate.trim().parse().map_err(|_| expected())?;
    if rate == 0 {
        return Err(format!(
            "a limit of 0 in \"{text}\" never lets a packet through; drop instead"
        ));
    }
    let per = match per.trim() {
        "second" | "s" => Per::Second,
        "minute" | "m" => Per::Minute,
        "hour" | "h" => Per::Hour,
        "day" | "d" => Per::Day,
        _ => return Err(expected()),
    };
    Ok(Limit { rate, per })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_expand_to_their_protocols() {
        assert_eq!(
            parse_service("dns").unwrap_or_default(),
            vec![
                Service::Ports {
                    transport: Transport::Udp,
                    first: 53,
                    last: 53
                },
                Service::Ports {
                    transport: Transport::Tcp,
                    first: 53,
                    last: 53
                },
            ]
        );
        assert_eq!(parse_service("ping").map(|s| s.len()), Ok(2));
    }

    #[test]
    fn ranges_and_icmp_types_parse() {
        assert_eq!(
            parse_service("udp/60000-61000"),
            Ok(vec![Service::Ports {
                transport: Transport::Udp,
                first: 60000,
                last: 61000
            }])
        );
        assert!(parse_service("icmpv6/packet-too-big").is_ok());
    }

    #[test]
    fn mistakes_say_what_was_expected() {
        for (text, expected) in [
            ("tcp/0", "expected 1 to 65535"),
            ("tcp/70000", "expected 1 to 65535"),
            ("tcp/30-20", "runs backwards"),
            ("sctp/5", "expected a service"),
            ("icmp/packet-too-big", "is not an icmp type"),
            ("telnet", "expected a service"),
        ] {
            match parse_service(text) {
                Err(message) => assert!(message.contains(expected), "{text}: {message}"),
                Ok(parsed) => panic!("{text} parsed as {parsed:?}"),
            }
        }
    }

    #[test]
    fn addresses_sets_and_limits_parse() {
        assert_eq!(parse_address("@nas"), Ok(AddressMatch::Set("nas".into())));
        assert!(
            matches!(parse_address("192.168.40.20"), Ok(AddressMatch::Net(net)) if net.prefix_len() == 32)
        );
        assert!(parse_address("192.168.40.1/24").is_err());
        assert_eq!(
            parse_limit("10/minute"),
            Ok(Limit {
                rate: 10,
                per: Per::Minute
            })
        );
        assert!(parse_limit("0/second").is_err());
        assert!(parse_limit("fast").is_err());
    }
}
