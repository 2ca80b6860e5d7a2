//! The crate's one error type.

/// What went wrong with a VRRP packet or an instance's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    /// A received packet is not a well-formed VRRPv3 advertisement.
    #[error("malformed VRRP packet: {0}")]
    Malformed(&'static str),
    /// A received packet of another VRRP version (2 is keepalived's default).
    #[error("VRRP version {0}, expected 3")]
    Version(u8),
    /// The checksum over the pseudo-header and the message does not add up.
    #[error("VRRP checksum mismatch")]
    Checksum,
    /// An advertisement that cannot be put on the wire as asked.
    #[error("cannot encode VRRP advertisement: {0}")]
    Encode(&'static str),
    /// Instance settings outside what RFC 5798 allows.
    #[error("invalid VRRP instance: {0}")]
    Settings(String),
}
