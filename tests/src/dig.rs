//! Running `dig` inside a lab host and reading its answer.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::Host;

/// A query and dig's options for it. Defaults: UDP first (dig's own TCP
/// fallback on TC), one try, 2 s timeout, RD set.
#[derive(Debug, Clone)]
pub struct Query {
    /// The name asked for.
    pub name: String,
    /// The type asked for ("A", "AAAA", "TXT", ...).
    pub rtype: String,
    /// Server port.
    pub port: u16,
    /// `Some(true)`: +tcp, `Some(false)`: +notcp, `None`: dig's default.
    pub tcp: Option<bool>,
    /// +dnssec (DO bit).
    pub dnssec: bool,
    /// +adflag (ask for AD; dig 9.18 sets it by default anyway).
    pub adflag: bool,
    /// +cdflag (checking disabled).
    pub cdflag: bool,
    /// +ignore: keep a truncated UDP answer instead of retrying over TCP.
    pub ignore_tc: bool,
    /// +bufsize=N (EDNS payload size); `Some(0)` sends no EDNS (+noedns).
    pub bufsize: Option<u16>,
    /// +recurse / +norecurse.
    pub recurse: bool,
    /// +timeout=N seconds.
    pub timeout_s: u32,
    /// +tries=N.
    pub tries: u32,
    /// Further dig options, passed as given (e.g. "+edns=1").
    pub extra: Vec<String>,
}

impl Query {
    /// A query for `name`/`rtype` with the defaults above.
    pub fn new(name: &str, rtype: &str) -> Query {
        Query {
            name: name.to_string(),
            rtype: rtype.to_string(),
            port: 53,
            tcp: None,
            dnssec: false,
            adflag: false,
            cdflag: false,
            ignore_tc: false,
            bufsize: None,
            recurse: true,
            timeout_s: 2,
            tries: 1,
            extra: Vec::new(),
        }
    }

    /// Adds a dig option as is, e.g. `"+edns=1"` or `"+noednsnegotiation"`.
    pub fn arg(mut self, option: &str) -> Self {
        self.extra.push(option.to_string());
        self
    }

    /// Over TCP only.
    pub fn tcp(mut self) -> Self {
        self.tcp = Some(true);
        self
    }

    /// Over UDP (dig still retries over TCP on TC unless [`Query::ignore_tc`]).
    pub fn udp(mut self) -> Self {
        self.tcp = Some(false);
        self
    }

    /// Sets the DO bit.
    pub fn dnssec(mut self) -> Self {
        self.dnssec = true;
        self
    }

    /// Sets the AD bit in the query.
    pub fn adflag(mut self) -> Self {
        self.adflag = true;
        self
    }

    /// Sets the CD bit.
    pub fn cdflag(mut self) -> Self {
        self.cdflag = true;
        self
    }

    /// Keeps a truncated answer (+ignore).
    pub fn ignore_tc(mut self) -> Self {
        self.ignore_tc = true;
        self
    }

    /// Advertises an EDNS payload size.
    pub fn bufsize(mut self, size: u16) -> Self {
        self.bufsize = Some(size);
        self
    }

    /// Clears RD.
    pub fn norecurse(mut self) -> Self {
        self.recurse = false;
        self
    }

    /// Sets the per-try timeout in seconds.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_s = seconds;
        self
    }

    /// Sets the number of tries.
    pub fn tries(mut self, tries: u32) -> Self {
        self.tries = tries;
        self
    }

    /// dig's command line (without the program name).
    pub fn args(&self, server: IpAddr) -> Vec<String> {
        let mut args = vec![
            format!("@{server}"),
            "-p".to_string(),
            self.port.to_string(),
            self.name.clone(),
            self.rtype.clone(),
            format!("+timeout={}", self.timeout_s),
            format!("+tries={}", self.tries),
            if self.recurse {
                "+recurse"
            } else {
                "+norecurse"
            }
            .to_string(),
        ];
        match self.tcp {
            Some(true) => args.push("+tcp".into()),
            Some(false) => args.push("+notcp".into()),
            None => {}
        }
        let flags = [
            (self.dnssec, "+dnssec"),
            (self.adflag, "+adflag"),
            (self.cdflag, "+cdflag"),
            (self.ignore_tc, "+ignore"),
        ];
        args.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| f.to_string()),
        );
        match self.bufsize {
            Some(0) => args.push("+noedns".into()),
            Some(n) => args.push(format!("+bufsize={n}")),
            None => {}
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// One resource record line of dig's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Owner name, as printed (absolute, lower case as received).
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Type mnemonic ("A", "RRSIG", ...).
    pub rtype: String,
    /// The data, fields separated by single spaces.
    pub data: String,
}

/// What dig got back (the last answer, i.e. the TCP one after a retry).
#[derive(Debug, Clone, Default)]
pub struct DigResult {
    /// RCODE mnemonic: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
    pub status: String,
    /// Header flags as printed: "qr", "aa", "tc", "rd", "ra", "ad", "cd".
    pub flags: Vec<String>,
    /// The answer section.
    pub answer: Vec<Rr>,
    /// The authority section.
    pub authority: Vec<Rr>,
    /// The additional section (without the OPT pseudo-record).
    pub additional: Vec<Rr>,
    /// dig saw TC over UDP and retried over TCP.
    pub retried_tcp: bool,
    /// "UDP" or "TCP", from dig's SERVER line.
    pub transport: Option<String>,
    /// The EDNS payload size the server advertised, if any.
    pub edns_udp: Option<u16>,
    /// The EDNS version of the answer's OPT record, if any.
    pub edns_version: Option<u8>,
    /// The question section as printed: (name, type), name as received.
    pub question: Vec<(String, String)>,
    /// Size of the (last) answer in bytes (`MSG SIZE rcvd`).
    pub msg_size: Option<usize>,
    /// dig's complete output, for assertion messages.
    pub raw: String,
}

impl DigResult {
    /// True if the header flag (e.g. "ad") is set.
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Authoritative answer.
    pub fn aa(&self) -> bool {
        self.flag("aa")
    }

    /// Authenticated data (DNSSEC secure).
    pub fn ad(&self) -> bool {
        self.flag("ad")
    }

    /// Truncated.
    pub fn tc(&self) -> bool {
        self.flag("tc")
    }

    /// Recursion available.
    pub fn ra(&self) -> bool {
        self.flag("ra")
    }

    /// Data of the answer records of `rtype` that hold a domain name
    /// (CNAME, PTR, NS), lower-cased: names compare case-insensitively, and
    /// a resolver using 0x20 case randomisation may hand back mixed case.
    pub fn names(&self, rtype: &str) -> Vec<String> {
        self.answers(rtype)
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect()
    }

    /// Data of the answer records of `rtype`, in order.
    pub fn answers(&self, rtype: &str) -> Vec<&str> {
        self.answer
            .iter()
            .filter(|r| r.rtype.eq_ignore_ascii_case(rtype))
            .map(|r| r.data.as_str())
            .collect()
    }
}

/// Runs dig in `host` against `server`. An error when dig got no answer at
/// all (timeout, connection refused) — the raw output is in the message.
pub fn dig(host: &Host, server: IpAddr, query: &Query) -> Result<DigResult> {
    let args = query.args(server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host.exec("dig", &args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match parse(&text) {
        Some(result) => Ok(result),
        None => bail!(
            "no answer from {server} for {} {} (dig from {}, {}):\n{text}",
            query.name,
            query.rtype,
            host.name,
            out.status
        ),
    }
}

/// The PTR owner name of an address (in-addr.arpa / ip6.arpa), absolute.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name + "ip6.arpa."
        }
    }
}

/// Parses dig's default output; `None` when it holds no answer header.
pub fn parse(text: &str) -> Option<DigResult> {
    // After a TC retry dig prints two answers; the last one counts.
    let start = text.rfind(";; ->>HEADER<<-")?;
    let mut result = DigResult {
        retried_tcp: text.contains(";; Truncated, retrying in TCP mode."),
        raw: text.to_string(),
        ..DigResult::default()
    };
    let mut section = "";
    for line in text[start..].lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix(";; ->>HEADER<<-") {
            result.status = field(rest, "status:")?.to_string();
        } else if let Some(rest) = line.strip_prefix(";; flags:") {
            let flags = rest.split(';').next().unwrap_or_default();
            result.flags = flags.split_whitespace().map(str::to_string).collect();
        } else if let Some(rest) = line.strip_prefix("; EDNS:") {
            result.edns_udp = field(rest, "udp:").and_then(|v| v.parse().ok());
            result.edns_version = field(rest, "version:").and_then(|v| v.parse().ok());
        } else if let Some(rest) = line.strip_prefix(";; MSG SIZE  rcvd:") {
            result.msg_size = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix(";; SERVER:") {
            result.transport = rest
                .rsplit_once('(')
                .map(|(_, t)| t.trim_end_matches(')').to_string());
        } else if let Some(name) = line
            .strip_prefix(";; ")
            .and_then(|l| l.strip_suffix(" SECTION:"))
        {
            section = match name {
                "QUESTION" => "question",
                "ANSWER" => "answer",
                "AUTHORITY" => "authority",
                "ADDITIONAL" => "additional",
                _ => "",
            };
        } else if section == "question" && line.starts_with(';') && !line.starts_with(";;") {
            let words: Vec<&str> = line[1..].split_whitespace().collect();
            if let [name, .., rtype] = words.as_slice() {
                result.question.push((name.to_string(), rtype.to_string()));
            }
        } else if line.is_empty() || line.starts_with(';') {
            continue;
        } else if let Some(rr) = parse_rr(line) {
            match section {
                "answer" => result.answer.push(rr),
                "authority" => result.authority.push(rr),
                "additional" => result.additional.push(rr),
                _ => {}
            }
        }
    }
    Some(result)
}

/// The word after `key` in `text`, without a trailing comma.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let (_, after) = text.split_once(key)?;
    Some(after.split_whitespace().next()?.trim_end_matches(','))
}

/// `name ttl class type data...`
fn parse_rr(line: &str) -> Option<Rr> {
    let mut words = line.split_whitespace();
    let name = words.next()?.to_string();
    let ttl = words.next()?.parse().ok()?;
    let _class = words.next()?;
    let rtype = words.next()?.to_string();
    let data = words.collect::<Vec<_>>().join(" ");
    Some(Rr {
        name,
        ttl,
        rtype,
        data,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code
mod tests {
    use super::parse;

    const SAMPLE: &str = "
; <<>> DiG 9.18.49 <<>> @10.53.0.3 www.plain.lab A
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 5
;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1
;; WARNING: recursion requested but not available

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;www.plain.lab.\t\t\tIN\tA

;; ANSWER SECTION:
www.plain.lab.\t\t300\tIN\tA\t10.53.1.1

;; AUTHORITY SECTION:
plain.lab.\t300\tIN\tNS\tns.leaf.lab.

;; Query time: 0 msec
;; SERVER: 10.53.0.3#53(10.53.0.3) (UDP)
;; WHEN: Mon Jan 01 00:00:00 UTC 2024
;; MSG SIZE  rcvd: 92
";

    #[test]
    fn parses_answer() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.status, "NOERROR");
        assert!(r.aa() && !r.ad() && !r.tc());
        assert_eq!(r.answers("A"), ["10.53.1.1"]);
        assert_eq!(r.answer[0].ttl, 300);
        assert_eq!(r.authority[0].data, "ns.leaf.lab.");
        assert_eq!(r.transport.as_deref(), Some("UDP"));
        assert_eq!(r.edns_udp, Some(1232));
        assert_eq!(r.edns_version, Some(0));
        assert_eq!(
            r.question,
            [("www.plain.lab.".to_string(), "A".to_string())]
        );
        assert_eq!(r.msg_size, Some(92));
    }

    #[test]
    fn reverse_names() {
        let v4 = "10.53.7.7".parse().unwrap();
        assert_eq!(super::reverse_name(v4), "7.7.53.10.in-addr.arpa.");
        let v6 = "fd53::7:1".parse().unwrap();
        let name = super::reverse_name(v6);
        assert!(name.starts_with("1.0.0.0.7.0.0.0.0.0.0.0."), "{name}");
        assert!(name.ends_with(".3.5.d.f.ip6.arpa."), "{name}");
    }

    #[test]
    fn no_header_is_none() {
        assert!(parse(";; communications error to 10.53.0.53#53: timed out\n").is_none());
    }
}
