//! What goes wrong in a session, as data: every protocol error carries the
//! NOTIFICATION that tells the peer (RFC 4271 section 6).

use std::fmt;

/// NOTIFICATION error codes (RFC 4271 4.5).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
}

/// Subcodes the speaker sends.
pub mod subcode {
    // Message Header Error
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
    // OPEN Message Error
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    // UPDATE Message Error
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    // Cease (RFC 4486)
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const CONNECTION_COLLISION: u8 = 7;
}

/// A NOTIFICATION, sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    pub fn with_data(mut self, data: Vec<u8>) -> Notification {
        self.data = data;
        self
    }

    /// A Cease with a shutdown communication (RFC 8203, lengths per RFC
    /// 9003): the operator's reason, cut to 255 bytes on a character
    /// boundary.
    pub fn shutdown(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(text.len() + 1);
        data.push(text.len() as u8);
        data.extend_from_slice(text);
        Notification::new(code::CEASE, subcode).with_data(data)
    }

    /// The shutdown communication of a received Cease, if it carries a
    /// well-formed one.
    pub fn shutdown_message(&self) -> Option<String> {
        let shuts_down = self.code == code::CEASE
            && matches!(
                self.subcode,
                subcode::ADMINISTRATIVE_SHUTDOWN | subcode::ADMINISTRATIVE_RESET
            );
        let (len, text) = self.data.split_first()?;
        let text = text.get(..usize::from(*len))?;
        shuts_down
            .then(|| std::str::from_utf8(text).ok().map(str::to_owned))
            .flatten()
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match (self.code, self.subcode) {
            (code::MESSAGE_HEADER, subcode::CONNECTION_NOT_SYNCHRONIZED) => {
                "message header error: connection not synchronized"
            }
            (code::MESSAGE_HEADER, subcode::BAD_MESSAGE_LENGTH) => {
                "message header error: bad message length"
            }
            (code::MESSAGE_HEADER, subcode::BAD_MESSAGE_TYPE) => {
                "message header error: bad message type"
            }
            (code::MESSAGE_HEADER, _) => "message header error",
            (code::OPEN, subcode::UNSUPPORTED_VERSION) => "OPEN error: unsupported version",
            (code::OPEN, subcode::BAD_PEER_AS) => "OPEN error: bad peer AS",
            (code::OPEN, subcode::BAD_BGP_IDENTIFIER) => "OPEN error: bad BGP identifier",
            (code::OPEN, subcode::UNACCEPTABLE_HOLD_TIME) => "OPEN error: unacceptable hold time",
            (code::OPEN, subcode::UNSUPPORTED_CAPABILITY) => "OPEN error: unsupported capability",
            (code::OPEN, _) => "OPEN error",
            (code::UPDATE, subcode::MALFORMED_ATTRIBUTE_LIST) => {
                "UPDATE error: malformed attribute list"
            }
            (code::UPDATE, subcode::INVALID_NETWORK_FIELD) => "UPDATE error: invalid network field",
            (code::UPDATE, subcode::OPTIONAL_ATTRIBUTE_ERROR) => {
                "UPDATE error: optional attribute error"
            }
            (code::UPDATE, _) => "UPDATE error",
            (code::HOLD_TIMER_EXPIRED, _) => "hold timer expired",
            (code::FSM, _) => "finite state machine error",
            (code::CEASE, subcode::MAX_PREFIXES) => "cease: maximum number of prefixes reached",
            (code::CEASE, subcode::ADMINISTRATIVE_SHUTDOWN) => "cease: administrative shutdown",
            (code::CEASE, subcode::PEER_DECONFIGURED) => "cease: peer de-configured",
            (code::CEASE, subcode::ADMINISTRATIVE_RESET) => "cease: administrative reset",
            (code::CEASE, subcode::CONNECTION_REJECTED) => "cease: connection rejected",
            (code::CEASE, subcode::CONNECTION_COLLISION) => {
                "cease: connection collision resolution"
            }
            (code::CEASE, _) => "cease",
            _ => "unknown error",
        };
        write!(f, "{name} ({}/{})", self.code, self.subcode)?;
        if let Some(message) = self.shutdown_message() {
            write!(f, ": \"{}\"", message.escape_debug())?;
        }
        Ok(())
    }
}

/// The crate's errors.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BgpError {
    #[error("prefix {prefix} has host bits set (did you mean {}?)", prefix.trunc())]
    HostBits { prefix: ipnet::IpNet },
    #[error(
        "prefix lengths ge {ge} le {le} do not fit {prefix}: need {} <= ge <= le <= {}",
        prefix.prefix_len(),
        prefix.max_prefix_len()
    )]
    BadRange {
        prefix: ipnet::IpNet,
        ge: u8,
        le: u8,
    },
    #[error("prefix-list entry {text:?}: {reason}")]
    PrefixListSyntax { text: String, reason: &'static str },
    /// The peer broke the protocol; the session ends with this NOTIFICATION.
    #[error("{0}")]
    Protocol(Notification),
    /// Something of ours could not be put on the wire.
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn shutdown_communications_round_trip_and_are_cut_on_a_character() {
        let n = Notification::shutdown(
            subcode::ADMINISTRATIVE_SHUTDOWN,
            "maintenance, back at 10:00",
        );
        assert_eq!(n.data[0] as usize, n.data.len() - 1);
        assert_eq!(
            n.shutdown_message().as_deref(),
            Some("maintenance, back at 10:00")
        );
        assert!(n.to_string().contains("administrative shutdown"));

        let long = "é".repeat(200);
        let n = Notification::shutdown(subcode::ADMINISTRATIVE_SHUTDOWN, &long);
        assert!(n.data.len() <= 256);
        assert_eq!(n.shutdown_message().unwrap().chars().count(), 127);

        // A length beyond the data, or bytes that are not UTF-8, are no message.
        let bad = Notification::new(code::CEASE, subcode::ADMINISTRATIVE_SHUTDOWN)
            .with_data(vec![9, b'a']);
        assert_eq!(bad.shutdown_message(), None);
        let bad = Notification::new(code::CEASE, subcode::ADMINISTRATIVE_SHUTDOWN)
            .with_data(vec![1, 0xff]);
        assert_eq!(bad.shutdown_message(), None);
    }
}
