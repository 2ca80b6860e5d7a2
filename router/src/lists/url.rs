//! Just enough URL handling for list downloads: `http`/`https`, a host
//! (name, IPv4 or `[IPv6]`), an optional port, and the path with its query.
//! Userinfo is refused rather than sent in the clear or silently dropped.

use std::fmt;
use std::net::Ipv6Addr;

/// The scheme of a list URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed `http`/`https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub scheme: Scheme,
    /// Without brackets for IPv6, lowercase.
    pub host: String,
    pub port: u16,
    /// Origin form: starts with `/`, includes the query, no fragment.
    pub path: String,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {reason}")]
pub(crate) struct UrlError {
    pub url: String,
    pub reason: &'static str,
}

impl HttpUrl {
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let fail = |reason| UrlError {
            url: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| fail("expected http:// or https://"))?;
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(fail("only http and https are supported"));
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(fail("credentials in URLs are not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| fail("bad host or port"))?;
        let port = match port {
            Some(port) => port,
            None => scheme.default_port(),
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if !valid_path(&path) {
            return Err(fail(BAD_PATH));
        }
        Ok(HttpUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// Resolves a redirect's `Location` against this URL.
    pub fn join(&self, location: &str) -> Result<Self, UrlError> {
        let location = location.trim();
        if location.is_empty() {
            return Ok(self.clone());
        }
        if has_scheme(location) {
            return Self::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Self::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        let location = location.split_once('#').map_or(location, |(l, _)| l);
        let path = if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            let base = self.path.split_once('?').map_or(&*self.path, |(p, _)| p);
            format!("{base}{location}")
        } else {
            let base = self.path.split_once('?').map_or(&*self.path, |(p, _)| p);
            let dir = base.rfind('/').map_or("/", |slash| &base[..=slash]);
            format!("{dir}{location}")
        };
        let mut joined = self.clone();
        joined.path = remove_dot_segments(&path);
        if !valid_path(&joined.path) {
            return Err(UrlError {
                url: location.to_owned(),
                reason: BAD_PATH,
            });
        }
        Ok(joined)
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port`, always with the port, for messages.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.bracketed_host(), self.port)
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.host_header(),
            self.path
        )
    }
}

const BAD_PATH: &str = "the path has spaces or other characters to percent-encode";

/// The check the request itself will make, done early so a configuration
/// check reports it.
fn valid_path(path: &str) -> bool {
    path.parse::<hyper::http::uri::PathAndQuery>().is_ok()
}

/// RFC 3986: `scheme ":"` before any `/`, `?` or `#`.
fn has_scheme(reference: &str) -> bool {
    let Some(colon) = reference.find(':') else {
        return false;
    };
    let scheme = &reference[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    if !valid_host {
        return None;
    }
    let port = match port {
        // "http://host:/" is legal and means the default port.
        Some("") | None => None,
        Some(port) => Some(port.parse::<u16>().ok().filter(|&p| p != 0)?),
    };
    Some((host.to_ascii_lowercase(), port))
}

/// RFC 3986 §5.2.4, so a relative redirect like `../v2/hosts` lands where a
/// browser would send it.
fn remove_dot_segments(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            other => {
                out.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(path.len() + 1);
    for segment in &out {
        result.push('/');
        result.push_str(segment);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}
