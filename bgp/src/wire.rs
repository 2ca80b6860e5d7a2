//! BGP messages on the wire: framing a TCP byte stream into messages, and
//! decoding and encoding them with `bgpkit-parser`. Everything a peer sends
//! is hostile: decoding never panics and every refusal is the NOTIFICATION
//! RFC 4271 and RFC 7606 call for.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgpkit_parser::error::BgpValidationWarning;
use bgpkit_parser::models::capabilities::{
    BgpCapabilityType, FourOctetAsCapability, MultiprotocolExtensionsCapability,
    RouteRefreshCapability,
};
use bgpkit_parser::models::{Afi, Safi};
use bgpkit_parser::models::{
    AsPath as KitAsPath, AsPathSegment, AsnLength, AttrFlags, AttrType, Attribute, AttributeValue,
    Attributes, BgpError as KitError, BgpMessage, BgpNotificationMessage, BgpOpenMessage,
    BgpRouteRefreshMessage, BgpUpdateMessage, Capability, CapabilityValue, NetworkPrefix, Nlri,
    OptParam, Origin as KitOrigin, ParamValue,
};
use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
use bytes::Bytes;
use ipnet::IpNet;

use crate::error::{BgpError, Notification, code, subcode};
use crate::route::{AsPath, Asn, Origin, PathAttributes, Segment, SegmentRef, Update};

/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// The largest message without the extended message capability.
pub const MAX_LEN: usize = 4096;
/// AS_TRANS (RFC 6793): what a 4-octet AS says in 2-octet fields.
pub const AS_TRANS: u16 = 23456;

const MARKER: [u8; 16] = [0xff; 16];
const TYPE_OPEN: u8 = 1;
pub(crate) const TYPE_UPDATE: u8 = 2;
const TYPE_NOTIFICATION: u8 = 3;
const TYPE_KEEPALIVE: u8 = 4;
const TYPE_ROUTE_REFRESH: u8 = 5;

/// The address families this speaker exchanges: unicast only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::Ipv4,
            IpNet::V6(_) => Family::Ipv6,
        }
    }

    fn afi(self) -> Afi {
        match self {
            Family::Ipv4 => Afi::Ipv4,
            Family::Ipv6 => Afi::Ipv6,
        }
    }
}

/// What an OPEN offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The sender's AS from the 4-octet AS capability (RFC 6793).
    pub four_octet_as: Option<Asn>,
    /// Multiprotocol unicast families (RFC 4760).
    pub families: Vec<Family>,
    /// Route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Any multiprotocol capability at all: without one, a peer speaks
    /// IPv4 unicast only (RFC 4760 section 8).
    pub multiprotocol: bool,
}

/// A decoded OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field.
    pub asn16: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Capabilities,
}

impl Open {
    /// The sender's AS: the 4-octet capability's when present.
    pub fn asn(&self) -> Asn {
        self.capabilities
            .four_octet_as
            .unwrap_or(u32::from(self.asn16))
    }

    /// The families both sides can use, given what we offered.
    pub fn families(&self) -> Vec<Family> {
        if self.capabilities.multiprotocol {
            self.capabilities.families.clone()
        } else {
            vec![Family::Ipv4]
        }
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(ReceivedUpdate),
    Notification(Notification),
    Keepalive,
    RouteRefresh { afi: u16, safi: u8 },
}

/// An UPDATE's routes, split by family (each family has its own next hop).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedUpdate {
    pub updates: Vec<Update>,
    /// Set when the attributes were malformed in a way RFC 7606 answers
    /// with treat-as-withdraw: the announced prefixes are in `withdrawn`.
    pub treated_as_withdraw: Option<String>,
    /// An End-of-RIB marker (RFC 4724): an empty UPDATE.
    pub end_of_rib: bool,
}

/// The length of the first message in `buf` when it is all there, `None`
/// when more bytes are needed. A bad header is the peer's error.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, Notification> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if header[..16] != MARKER {
        return Err(Notification::new(
            code::MESSAGE_HEADER,
            subcode::CONNECTION_NOT_SYNCHRONIZED,
        ));
    }
    let length = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let kind = header[18];
    let bad_length = || {
        Notification::new(code::MESSAGE_HEADER, subcode::BAD_MESSAGE_LENGTH)
            .with_data(header[16..18].to_vec())
    };
    let minimum = match kind {
        TYPE_OPEN => 29,
        TYPE_UPDATE => 23,
        TYPE_NOTIFICATION => 21,
        TYPE_KEEPALIVE => HEADER_LEN,
        TYPE_ROUTE_REFRESH => 23,
        _ => {
            return Err(
                Notification::new(code::MESSAGE_HEADER, subcode::BAD_MESSAGE_TYPE)
                    .with_data(vec![kind]),
            );
        }
    };
    if length < minimum || length > MAX_LEN || (kind == TYPE_KEEPALIVE && length != HEADER_LEN) {
        return Err(bad_length());
    }
    Ok((buf.len() >= length).then_some(length))
}

/// Decodes one framed message (as [`frame`] delimited it). `four_octet`:
/// both sides announced 4-octet AS numbers, so AS_PATH carries them.
pub fn decode(message: &[u8], four_octet: bool) -> Result<Message, Notification> {
    let kind = message.get(18).copied().unwrap_or(0);
    // A full table is hundreds of thousands of plain UPDATEs: those are
    // read in place, the rest (and anything odd) by bgpkit below.
    if four_octet
        && kind == TYPE_UPDATE
        && let Some(update) = crate::wire_fast::decode_update(message)
    {
        return Ok(Message::Update(update));
    }
    decode_with_bgpkit(message, four_octet)
}

/// [`decode`] without the fast path for common UPDATEs: every message
/// through `bgpkit-parser`. Public for the differential test and the fuzz
/// target, which hold the two to the same results.
pub fn decode_with_bgpkit(message: &[u8], four_octet: bool) -> Result<Message, Notification> {
    let kind = message.get(18).copied().unwrap_or(0);
    if kind == TYPE_NOTIFICATION {
        // Decoded by hand: a NOTIFICATION of any code is still a NOTIFICATION.
        return Ok(Message::Notification(Notification {
            code: message.get(19).copied().unwrap_or(0),
            subcode: message.get(20).copied().unwrap_or(0),
            data: message.get(21..).unwrap_or_default().to_vec(),
        }));
    }
    let asn_len = if four_octet {
        AsnLength::Bits32
    } else {
        AsnLength::Bits16
    };
    let mut bytes = Bytes::copy_from_slice(message);
    let parsed = parse_bgp_message(&mut bytes, false, &asn_len);
    match (kind, parsed) {
        (_, Ok(BgpMessage::Open(open))) => decode_open(&open).map(Message::Open),
        (_, Ok(BgpMessage::Update(update))) => decode_update(update).map(Message::Update),
        (_, Ok(BgpMessage::KeepAlive)) => Ok(Message::Keepalive),
        (_, Ok(BgpMessage::RouteRefresh(refresh))) => Ok(Message::RouteRefresh {
            afi: refresh.afi,
            safi: refresh.safi,
        }),
        (_, Ok(BgpMessage::Notification(n))) => {
            let (code, subcode) = n.error.get_codes();
            Ok(Message::Notification(Notification {
                code,
                subcode,
                data: n.data,
            }))
        }
        (TYPE_OPEN, Err(_)) => Err(Notification::new(code::OPEN, 0)),
        (TYPE_UPDATE, Err(_)) => Err(Notification::new(
            code::UPDATE,
            subcode::MALFORMED_ATTRIBUTE_LIST,
        )),
        (_, Err(_)) => Err(Notification::new(
            code::MESSAGE_HEADER,
            subcode::BAD_MESSAGE_LENGTH,
        )),
    }
}

fn decode_open(open: &BgpOpenMessage) -> Result<Open, Notification> {
    let mut capabilities = Capabilities::default();
    for param in &open.opt_params {
        let ParamValue::Capacities(list) = &param.param_value else {
            continue;
        };
        for capability in list {
            match &capability.value {
                CapabilityValue::FourOctetAs(four) => capabilities.four_octet_as = Some(four.asn),
                CapabilityValue::MultiprotocolExtensions(mp) => {
                    capabilities.multiprotocol = true;
                    let family = match (mp.afi, mp.safi) {
                        (Afi::Ipv4, Safi::Unicast) => Some(Family::Ipv4),
                        (Afi::Ipv6, Safi::Unicast) => Some(Family::Ipv6),
                        _ => None,
                    };
                    if let Some(family) = family
                        && !capabilities.families.contains(&family)
                    {
                        capabilities.families.push(family);
                    }
                }
                CapabilityValue::RouteRefresh(_) => capabilities.route_refresh = true,
                _ => {}
            }
        }
    }
    Ok(Open {
        version: open.version,
        asn16: u16::try_from(u32::from(open.asn)).unwrap_or(AS_TRANS),
        hold_time: open.hold_time,
        router_id: open.bgp_identifier,
        capabilities,
    })
}

/// RFC 7606: which attribute problems end the session and which only
/// withdraw the UPDATE's routes. The session ends only when the prefixes
/// themselves cannot be found; a broken or missing well-known attribute
/// withdraws them, a broken optional one we do not use is ignored.
fn decode_update(update: BgpUpdateMessage) -> Result<ReceivedUpdate, Notification> {
    let mut withdrawn: Vec<IpNet> = update.withdrawn_prefixes.iter().map(|p| p.prefix).collect();
    let mut withdrawn_v6: Vec<IpNet> = Vec::new();
    if let Some(unreach) = update.attributes.get_unreachable_nlri() {
        withdrawn_v6.extend(unreach.prefixes.iter().map(|p| p.prefix));
    }
    let announced_v4: Vec<IpNet> = update.announced_prefixes.iter().map(|p| p.prefix).collect();
    let reach = update.attributes.get_reachable_nlri();
    let announced_mp: Vec<IpNet> = reach
        .map(|nlri| nlri.prefixes.iter().map(|p| p.prefix).collect())
        .unwrap_or_default();
    let announces = !announced_v4.is_empty() || !announced_mp.is_empty();
    let mut problem: Option<String> = None;
    for warning in update.attributes.validation_warnings() {
        match warning {
            // The NLRI cannot be trusted: no way to know what to withdraw.
            BgpValidationWarning::MalformedNlri { .. }
            | BgpValidationWarning::InvalidNetworkField { .. } => {
                return Err(Notification::new(
                    code::UPDATE,
                    subcode::INVALID_NETWORK_FIELD,
                ));
            }
            // A broken MP_REACH or MP_UNREACH hides prefixes (RFC 7606 7.11).
            BgpValidationWarning::OptionalAttributeError { attr_type, .. }
            | BgpValidationWarning::PartialAttributeError { attr_type, .. }
                if matches!(
                    attr_type,
                    AttrType::MP_REACHABLE_NLRI | AttrType::MP_UNREACHABLE_NLRI
                ) =>
            {
                return Err(Notification::new(
                    code::UPDATE,
                    subcode::OPTIONAL_ATTRIBUTE_ERROR,
                ));
            }
            // Attribute discard: other optional attributes do not decide
            // anything here; only the first of repeated attributes counts
            // (RFC 7606 3.g).
            BgpValidationWarning::OptionalAttributeError { .. }
            | BgpValidationWarning::PartialAttributeError { .. }
            | BgpValidationWarning::DuplicateAttribute { .. } => {}
            // Well-known attributes missing or malformed: treat-as-withdraw.
            other if announces => {
                problem.get_or_insert_with(|| other.to_string());
            }
            _ => {}
        }
    }
    let end_of_rib = withdrawn.is_empty() && withdrawn_v6.is_empty() && !announces;
    if let Some(reason) = problem {
        withdrawn.extend(announced_v4);
        withdrawn.extend(withdrawn_v6);
        withdrawn.extend(announced_mp);
        return Ok(ReceivedUpdate {
            updates: vec![Update {
                withdrawn,
                announced: Vec::new(),
                attributes: None,
            }],
            treated_as_withdraw: Some(reason),
            end_of_rib: false,
        });
    }
    let mut updates = Vec::new();
    let attributes = &update.attributes;
    let shared = |next_hop: Option<IpAddr>| -> Result<Option<Arc<PathAttributes>>, String> {
        let next_hop = next_hop.ok_or("no next hop")?;
        let as_path = attributes
            .as_path()
            .map(from_kit_path)
            .ok_or("no AS_PATH")?;
        Ok(Some(Arc::new(PathAttributes {
            origin: match attributes.origin() {
                KitOrigin::IGP => Origin::Igp,
                KitOrigin::EGP => Origin::Egp,
                KitOrigin::INCOMPLETE => Origin::Incomplete,
            },
            as_path,
            next_hop,
            med: attributes.multi_exit_discriminator(),
            local_pref: attributes.local_preference(),
            communities: Vec::new(),
        })))
    };
    let mut missing: Option<String> = None;
    if !withdrawn.is_empty() || !announced_v4.is_empty() {
        let attrs = if announced_v4.is_empty() {
            None
        } else {
            match shared(attributes.next_hop()) {
                Ok(attrs) => attrs,
                Err(e) => {
                    missing = Some(e);
                    None
                }
            }
        };
        if attrs.is_some() {
            updates.push(Update {
                withdrawn: std::mem::take(&mut withdrawn),
                announced: announced_v4,
                attributes: attrs,
            });
        } else {
            withdrawn.extend(announced_v4);
        }
    }
    if !withdrawn_v6.is_empty() || !announced_mp.is_empty() {
        let next_hop = reach
            .and_then(|nlri| nlri.next_hop.as_ref())
            .map(|hop| hop.addr());
        let attrs = if announced_mp.is_empty() {
            None
        } else {
            match shared(next_hop) {
                Ok(attrs) => attrs,
                Err(e) => {
                    missing.get_or_insert(e);
                    None
                }
            }
        };
        if attrs.is_some() {
            updates.push(Update {
                withdrawn: std::mem::take(&mut withdrawn_v6),
                announced: announced_mp,
                attributes: attrs,
            });
        } else {
            withdrawn_v6.extend(announced_mp);
        }
    }
    withdrawn.extend(withdrawn_v6);
    if !withdrawn.is_empty() {
        updates.push(Update {
            withdrawn,
            announced: Vec::new(),
            attributes: None,
        });
    }
    Ok(ReceivedUpdate {
        updates,
        treated_as_withdraw: missing,
        end_of_rib,
    })
}

fn from_kit_path(path: &KitAsPath) -> AsPath {
    AsPath {
        segments: path
            .iter_segments()
            .filter_map(|segment| match segment {
                AsPathSegment::AsSequence(asns) => {
                    Some(Segment::Sequence(asns.iter().map(|a| a.to_u32()).collect()))
                }
                AsPathSegment::AsSet(asns) => {
                    Some(Segment::Set(asns.iter().map(|a| a.to_u32()).collect()))
                }
                // Confederations are not spoken here; their segments
                // never count toward the path length (RFC 5065).
                AsPathSegment::ConfedSequence(_) | AsPathSegment::ConfedSet(_) => None,
            })
            .collect(),
    }
}

fn to_kit_path(path: &AsPath) -> KitAsPath {
    let mut kit = KitAsPath::new();
    for segment in &path.segments {
        kit.segments.push(match segment {
            SegmentRef::Sequence(asns) => {
                AsPathSegment::AsSequence(asns.iter().map(|a| (*a).into()).collect())
            }
            SegmentRef::Set(asns) => {
                AsPathSegment::AsSet(asns.iter().map(|a| (*a).into()).collect())
            }
        });
    }
    kit
}

fn encode_message(
    message: &BgpMessage,
    four_octet: bool,
    what: &'static str,
) -> Result<Vec<u8>, BgpError> {
    let asn_len = if four_octet {
        AsnLength::Bits32
    } else {
        AsnLength::Bits16
    };
    message
        .encode(asn_len)
        .map(|bytes| bytes.to_vec())
        .map_err(|e| BgpError::Encode {
            what,
            reason: e.to_string(),
        })
}

/// Our OPEN: 4-octet AS, the families, route refresh.
pub fn encode_open(
    asn: Asn,
    hold_time: u16,
    router_id: Ipv4Addr,
    families: &[Family],
) -> Result<Vec<u8>, BgpError> {
    let mut capabilities: Vec<Capability> = families
        .iter()
        .map(|family| Capability {
            ty: BgpCapabilityType::MULTIPROTOCOL_EXTENSIONS_FOR_BGP_4,
            value: CapabilityValue::MultiprotocolExtensions(MultiprotocolExtensionsCapability {
                afi: family.afi(),
                safi: Safi::Unicast,
            }),
        })
        .collect();
    capabilities.push(Capability {
        ty: BgpCapabilityType::ROUTE_REFRESH_CAPABILITY_FOR_BGP_4,
        value: CapabilityValue::RouteRefresh(RouteRefreshCapability),
    });
    capabilities.push(Capability {
        ty: BgpCapabilityType::SUPPORT_FOR_4_OCTET_AS_NUMBER_CAPABILITY,
        value: CapabilityValue::FourOctetAs(FourOctetAsCapability { asn }),
    });
    let open = BgpOpenMessage {
        version: 4,
        asn: u32::from(u16::try_from(asn).unwrap_or(AS_TRANS)).into(),
        hold_time,
        bgp_identifier: router_id,
        extended_length: false,
        opt_params: vec![OptParam {
            param_type: 2,
            param_value: ParamValue::Capacities(capabilities),
        }],
    };
    encode_message(&BgpMessage::Open(open), true, "OPEN")
}

pub fn encode_keepalive() -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_LEN);
    message.extend_from_slice(&MARKER);
    message.extend_from_slice(&(HEADER_LEN as u16).to_be_bytes());
    message.push(TYPE_KEEPALIVE);
    message
}

pub fn encode_notification(notification: &Notification) -> Result<Vec<u8>, BgpError> {
    let message = BgpMessage::Notification(BgpNotificationMessage {
        error: KitError::new(notification.code, notification.subcode),
        data: notification.data.clone(),
    });
    encode_message(&message, true, "NOTIFICATION")
}

pub fn encode_route_refresh(family: Family) -> Result<Vec<u8>, BgpError> {
    let message = BgpMessage::RouteRefresh(BgpRouteRefreshMessage {
        afi: family.afi() as u16,
        subtype: 0,
        safi: Safi::Unicast as u8,
        data: Vec::new(),
    });
    encode_message(&message, true, "ROUTE-REFRESH")
}

/// An End-of-RIB marker for `family` (RFC 4724).
pub fn encode_end_of_rib(family: Family, four_octet: bool) -> Result<Vec<u8>, BgpError> {
    let attributes: Attributes = match family {
        Family::Ipv4 => Attributes::default(),
        Family::Ipv6 => std::iter::once(AttributeValue::MpUnreachNlri(Nlri::new_unreachable(
            NetworkPrefix::new(IpNet::V6(Default::default()), None),
        )))
        .map(|value| match value {
            AttributeValue::MpUnreachNlri(mut nlri) => {
                nlri.prefixes.clear();
                AttributeValue::MpUnreachNlri(nlri)
            }
            other => other,
        })
        .collect(),
    };
    let update = BgpUpdateMessage {
        withdrawn_prefixes: Vec::new(),
        attributes,
        announced_prefixes: Vec::new(),
    };
    encode_message(&BgpMessage::Update(update), four_octet, "End-of-RIB")
}

/// Bytes one prefix takes in NLRI: a length octet and the significant octets.
fn nlri_len(net: &IpNet) -> usize {
    1 + usize::from(net.prefix_len()).div_ceil(8)
}

/// UPDATEs carrying `update` (one family per call), as many as the 4096
/// byte limit needs.
pub fn encode_update(update: &Update, four_octet: bool) -> Result<Vec<Vec<u8>>, BgpError> {
    let mut messages = Vec::new();
    // Attribute bytes are bounded well below this for what we send (no
    // communities beyond a few, paths of at most a few hundred ASes).
    let budget = MAX_LEN - HEADER_LEN - 4 - 600;
    for chunk in chunks(&update.withdrawn, budget) {
        messages.push(encode_one(chunk, &[], None, four_octet)?);
    }
    if let Some(attributes) = &update.attributes {
        let attr_budget = budget.saturating_sub(attributes.as_path.len() * 4);
        for chunk in chunks(&update.announced, attr_budget) {
            messages.push(encode_one(&[], chunk, Some(attributes), four_octet)?);
        }
    }
    Ok(messages)
}

/// Consecutive runs of `nets` whose NLRI fits in `budget` bytes.
fn chunks(nets: &[IpNet], budget: usize) -> Vec<&[IpNet]> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, net) in nets.iter().enumerate() {
        let len = nlri_len(net);
        if used + len > budget && i > start {
            out.push(&nets[start..i]);
            start = i;
            used = 0;
        }
        used += len;
    }
    if start < nets.len() {
        out.push(&nets[start..]);
    }
    out
}

fn encode_one(
    withdrawn: &[IpNet],
    announced: &[IpNet],
    attributes: Option<&PathAttributes>,
    four_octet: bool,
) -> Result<Vec<u8>, BgpError> {
    let prefixes = |nets: &[IpNet]| -> Vec<NetworkPrefix> {
        nets.iter().map(|n| NetworkPrefix::new(*n, None)).collect()
    };
    let (w4, w6): (Vec<IpNet>, Vec<IpNet>) = withdrawn.iter().partition(|n| n.addr().is_ipv4());
    let (a4, a6): (Vec<IpNet>, Vec<IpNet>) = announced.iter().partition(|n| n.addr().is_ipv4());
    let mut values: Vec<AttributeValue> = Vec::new();
    if let Some(attrs) = attributes {
        values.push(AttributeValue::Origin(match attrs.origin {
            Origin::Igp => KitOrigin::IGP,
            Origin::Egp => KitOrigin::EGP,
            Origin::Incomplete => KitOrigin::INCOMPLETE,
        }));
        values.push(AttributeValue::AsPath(to_kit_path(&attrs.as_path)));
        if !a4.is_empty() {
            values.push(AttributeValue::NextHop(attrs.next_hop));
        }
        if let Some(med) = attrs.med {
            values.push(AttributeValue::MultiExitDiscriminator(med));
        }
        if let Some(pref) = attrs.local_pref {
            values.push(AttributeValue::LocalPreference(pref));
        }
        if !a6.is_empty() {
            let mut nlri =
                Nlri::new_reachable(NetworkPrefix::new(a6[0], None), Some(attrs.next_hop));
            nlri.prefixes = prefixes(&a6);
            values.push(AttributeValue::MpReachNlri(nlri));
        }
    }
    if !w6.is_empty() {
        let mut nlri = Nlri::new_unreachable(NetworkPrefix::new(w6[0], None));
        nlri.prefixes = prefixes(&w6);
        values.push(AttributeValue::MpUnreachNlri(nlri));
    }
    let asn_len = if four_octet {
        AsnLength::Bits32
    } else {
        AsnLength::Bits16
    };
    let attributes: Attributes = values
        .into_iter()
        .map(|value| {
            let mut attribute = Attribute::from(value);
            // bgpkit writes a one-octet length unless the flag says
            // otherwise: a path of more than 63 ASes, or a few dozen IPv6
            // prefixes, need the two-octet one (RFC 4271 4.3).
            if attribute.encode(asn_len).is_err() {
                attribute.flag |= AttrFlags::EXTENDED;
            }
            attribute
        })
        .collect();
    let update = BgpUpdateMessage {
        withdrawn_prefixes: prefixes(&w4),
        attributes,
        announced_prefixes: prefixes(&a4),
    };
    let bytes = encode_message(&BgpMessage::Update(update), four_octet, "UPDATE")?;
    if bytes.len() > MAX_LEN {
        return Err(BgpError::Encode {
            what: "UPDATE",
            reason: format!("{} bytes exceed the 4096-byte limit", bytes.len()),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
