//! The speaker: every peer's session, their Adj-RIBs-In, the Loc-RIB and
//! what each peer is sent, as one state machine. The driver reports a
//! peer's events (connection, bytes, timers) and carries out the outputs:
//! session I/O for a peer, and kernel routes to install or remove.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::error::{Notification, code, subcode};
use crate::fsm::{Action, Event, Negotiated, Session, SessionConfig, State};
use crate::policy::{Import, Policy, PrefixLimit, check_prefix_limit};
use crate::rib::{AdjRibIn, BestChange, LocRib, RouteRef, Standing};
use crate::rib_out::{AdjRibOut, NextHops};
use crate::route::{AsPath, Asn, Origin, PathAttributes, PeerInfo, Route, Source};
use crate::wire::{self, Family};

/// An index into the speaker's peers, in configuration order.
pub type PeerId = usize;

#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerConfig {
    pub asn: Asn,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub connect_retry: Duration,
    /// Originated from this speaker.
    pub networks: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeerSettings {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: Asn,
    pub passive: bool,
    pub max_prefixes: Option<u32>,
    pub import: Option<Policy>,
    pub export: Option<Policy>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Session I/O for a peer: connect, send, close, arm or stop a timer.
    /// `Up`, `Down` and the rest arrive too, for logs.
    Peer(PeerId, Action),
    /// Make `next_hop` the kernel's route for `prefix`.
    Install { prefix: IpNet, next_hop: IpAddr },
    /// Remove the kernel route for `prefix`.
    Remove { prefix: IpNet },
}

#[derive(Debug)]
struct Peer {
    settings: PeerSettings,
    session: Session,
    adj_in: Option<AdjRibIn>,
    /// Our addresses to give as next hop on this session.
    next_hops: NextHops,
    negotiated: Option<Negotiated>,
}

/// One peer as `routerctl bgp` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub address: IpAddr,
    pub remote_asn: Asn,
    pub state: State,
    pub last_error: Option<String>,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: Option<usize>,
}

/// A candidate route for `routerctl bgp routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `None` for this speaker's own networks.
    pub peer: Option<String>,
    pub route: Route,
    pub standing: Standing,
}

#[derive(Debug)]
pub struct Speaker {
    config: SpeakerConfig,
    peers: Vec<Peer>,
    loc: LocRib,
    /// Counts changes to what peers are sent: best routes and sessions.
    generation: u64,
}

impl Speaker {
    pub fn new(config: SpeakerConfig, peers: Vec<PeerSettings>) -> Speaker {
        let mut loc = LocRib::new();
        for prefix in &config.networks {
            loc.originate(*prefix, own_attributes(prefix));
        }
        let peers = peers
            .into_iter()
            .map(|settings| Peer {
                session: Session::new(SessionConfig {
                    local_asn: config.asn,
                    peer_asn: settings.remote_asn,
                    router_id: config.router_id,
                    hold_time: config.hold_time,
                    connect_retry: config.connect_retry,
                    passive: settings.passive,
                    families: vec![Family::Ipv4, Family::Ipv6],
                }),
                settings,
                adj_in: None,
                next_hops: NextHops::default(),
                negotiated: None,
            })
            .collect();
        Speaker {
            config,
            peers,
            loc,
            generation: 0,
        }
    }

    /// Moves whenever a best route or a session changes: a count of what
    /// peers are sent that was made at the same generation still holds.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    pub fn peer_settings(&self, peer: PeerId) -> Option<&PeerSettings> {
        self.peers.get(peer).map(|p| &p.settings)
    }

    /// The peer configured with this address, for an incoming connection.
    pub fn peer_by_address(&self, address: IpAddr) -> Option<PeerId> {
        self.peers
            .iter()
            .position(|p| p.settings.address == address)
    }

    /// What the peer's session agreed in its OPEN exchange, once it did.
    pub fn negotiated(&self, peer: PeerId) -> Option<&Negotiated> {
        self.peers.get(peer).and_then(|p| p.session.negotiated())
    }

    pub fn state(&self, peer: PeerId) -> Option<State> {
        self.peers.get(peer).map(|p| p.session.state())
    }

    /// Starts every session.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for id in 0..self.peers.len() {
            self.handle(id, Event::Start, &mut out);
        }
        out
    }

    /// A connection to or from the peer is up; `local` is our end of it,
    /// `other_family` an address of ours in the other family on the same
    /// link, for next hops of that family's routes.
    pub fn connected(
        &mut self,
        peer: PeerId,
        local: IpAddr,
        other_family: Option<IpAddr>,
    ) -> Vec<Output> {
        if let Some(p) = self.peers.get_mut(peer) {
            let mut hops = NextHops::default();
            for address in [Some(local), other_family].into_iter().flatten() {
                match address {
                    IpAddr::V4(v4) => hops.ipv4 = hops.ipv4.or(Some(v4)),
                    IpAddr::V6(v6) => hops.ipv6 = hops.ipv6.or(Some(v6)),
                }
            }
            p.next_hops = hops;
        }
        let mut out = Vec::new();
        self.handle(peer, Event::Connected, &mut out);
        out
    }

    /// Feeds one event of a peer's session.
    pub fn event(&mut self, peer: PeerId, event: Event<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        self.handle(peer, event, &mut out);
        out
    }

    fn handle(&mut self, id: PeerId, event: Event<'_>, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let actions = peer.session.handle(event);
        for action in actions {
            match action {
                Action::Up(negotiated) => {
                    self.generation += 1;
                    self.up(id, negotiated.clone(), out);
                    out.push(Output::Peer(id, Action::Up(negotiated)));
                }
                Action::Routes(update) => self.routes(id, &update, out),
                Action::Down(reason) => {
                    self.generation += 1;
                    self.down(id, out);
                    out.push(Output::Peer(id, Action::Down(reason)));
                }
                Action::RefreshRequested(family) => {
                    self.send_table(id, Some(family), out);
                    out.push(Output::Peer(id, Action::RefreshRequested(family)));
                }
                other => out.push(Output::Peer(id, other)),
            }
        }
    }

    fn peer_info(&self, id: PeerId) -> Option<PeerInfo> {
        let peer = self.peers.get(id)?;
        let negotiated = peer.negotiated.as_ref()?;
        Some(PeerInfo {
            address: peer.settings.address,
            router_id: negotiated.peer_router_id,
            asn: peer.settings.remote_asn,
            ebgp: peer.settings.remote_asn != self.config.asn,
        })
    }

    fn up(&mut self, id: PeerId, negotiated: Negotiated, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.negotiated = Some(negotiated);
        if let Some(info) = self.peer_info(id)
            && let Some(peer) = self.peers.get_mut(id)
        {
            peer.adj_in = Some(AdjRibIn::new(info));
        }
        self.send_table(id, None, out);
        let families = self.peers[id]
            .negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default();
        let four_octet = self.four_octet(id);
        for family in families {
            if let Ok(bytes) = wire::encode_end_of_rib(family, four_octet) {
                out.push(Output::Peer(id, Action::Send(bytes)));
            }
        }
    }

    fn four_octet(&self, id: PeerId) -> bool {
        self.peers
            .get(id)
            .and_then(|p| p.negotiated.as_ref())
            .is_none_or(|n| n.four_octet)
    }

    fn rib_out(&self, id: PeerId) -> Option<AdjRibOut<'_>> {
        let peer = self.peers.get(id)?;
        let info = self.peer_info(id)?;
        Some(AdjRibOut::new(
            self.config.asn,
            info,
            peer.next_hops,
            peer.settings.export.as_ref(),
        ))
    }

    /// The whole table (of one family, or all) to a peer that just came up
    /// or asked for a refresh.
    fn send_table(&self, id: PeerId, family: Option<Family>, out: &mut Vec<Output>) {
        let Some(rib_out) = self.rib_out(id) else {
            return;
        };
        let families = self.peers[id]
            .negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default();
        for mut update in rib_out.full_table(&self.loc) {
            update.announced.retain(|p| {
                families.contains(&Family::of(p)) && family.is_none_or(|f| f == Family::of(p))
            });
            if update.announced.is_empty() {
                continue;
            }
            self.send(id, &update, out);
        }
    }

    fn send(&self, id: PeerId, update: &crate::route::Update, out: &mut Vec<Output>) {
        match wire::encode_update(update, self.four_octet(id)) {
            Ok(messages) => {
                out.extend(
                    messages
                        .into_iter()
                        .map(|bytes| Output::Peer(id, Action::Send(bytes))),
                );
            }
            Err(e) => out.push(Output::Peer(
                id,
                Action::Down(format!("cannot encode an UPDATE: {e}")),
            )),
        }
    }

    fn routes(&mut self, id: PeerId, update: &crate::route::Update, out: &mut Vec<Output>) {
        let asn = self.config.asn;
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let Some(adj_in) = peer.adj_in.as_mut() else {
            return;
        };
        let ebgp = peer.settings.remote_asn != asn;
        let import = Import::new(asn, ebgp, peer.settings.import.as_ref());
        let best = adj_in.apply(update, &import, &mut self.loc);
        let accepted = adj_in.len();
        let limit = peer.settings.max_prefixes.map(|m| m as usize);
        self.propagate(&best, out);
        if let PrefixLimit::Exceeded { accepted, limit } = check_prefix_limit(accepted, limit) {
            // RFC 4486: Cease, with the AFI/SAFI and the limit as data.
            let mut data = vec![0, 1, 1];
            data.extend_from_slice(&(limit as u32).to_be_bytes());
            let notification =
                Notification::new(code::CEASE, subcode::MAX_PREFIXES).with_data(data);
            let _ = accepted;
            self.handle(id, Event::Stop(notification), out);
        }
    }

    fn down(&mut self, id: PeerId, out: &mut Vec<Output>) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        peer.negotiated = None;
        if let Some(adj_in) = peer.adj_in.take() {
            let best = self.loc.remove_peer(adj_in.peer().address);
            self.propagate(&best, out);
        }
    }

    /// Kernel routes and UPDATEs to every other established peer, then
    /// frees the attribute sets no route holds (`best` is read by then).
    fn propagate(&mut self, best: &[BestChange], out: &mut Vec<Output>) {
        if !best.is_empty() {
            self.export(best, out);
        }
        self.loc.sweep();
    }

    fn export(&mut self, best: &[BestChange], out: &mut Vec<Output>) {
        self.generation += 1;
        let learned = |route: &RouteRef| matches!(self.loc.source(*route), Source::Peer(_));
        for change in best {
            match &change.new {
                Some(route) if learned(route) => out.push(Output::Install {
                    prefix: change.prefix,
                    next_hop: self.loc.attributes(*route).next_hop,
                }),
                _ => {
                    if change.old.as_ref().is_some_and(learned) {
                        out.push(Output::Remove {
                            prefix: change.prefix,
                        });
                    }
                }
            }
        }
        for id in 0..self.peers.len() {
            if self.peers[id].session.state() != State::Established {
                continue;
            }
            let Some(rib_out) = self.rib_out(id) else {
                continue;
            };
            let families = self.peers[id]
                .negotiated
                .as_ref()
                .map(|n| n.families.clone())
                .unwrap_or_default();
            for mut update in rib_out.updates(&self.loc, best) {
                update
                    .announced
                    .retain(|p| families.contains(&Family::of(p)));
                update
                    .withdrawn
                    .retain(|p| families.contains(&Family::of(p)));
                if update.announced.is_empty() {
                    update.attributes = None;
                }
                if update.announced.is_empty() && update.withdrawn.is_empty() {
                    continue;
                }
                self.send(id, &update, out);
            }
        }
    }

    /// Every peer's status. Counting what each peer is sent walks the whole
    /// Loc-RIB, so it is only done with `count_advertised`; otherwise
    /// `prefixes_advertised` is `None`.
    pub fn peers(&self, count_advertised: bool) -> Vec<PeerStatus> {
        (0..self.peers.len())
            .map(|id| {
                let peer = &self.peers[id];
                let accepted = peer.adj_in.as_ref().map_or(0, AdjRibIn::len);
                let received = peer.adj_in.as_ref().map_or(0, AdjRibIn::received);
                let advertised = match (peer.session.state(), self.rib_out(id)) {
                    _ if !count_advertised => None,
                    (State::Established, Some(rib_out)) if rib_out.exports_nothing() => Some(0),
                    (State::Established, Some(rib_out)) => Some(
                        self.loc
                            .best_routes()
                            .filter(|route| rib_out.export(route).is_ok())
                            .count(),
                    ),
                    _ => Some(0),
                };
                PeerStatus {
                    name: peer.settings.name.clone(),
                    address: peer.settings.address,
                    remote_asn: peer.settings.remote_asn,
                    state: peer.session.state(),
                    last_error: peer.session.last_error().map(str::to_owned),
                    prefixes_received: received,
                    prefixes_accepted: accepted,
                    prefixes_advertised: advertised,
                }
            })
            .collect()
    }

    /// Every candidate for the prefixes (all prefixes when `filter` is
    /// `None`, else those equal to it or inside it), best first.
    pub fn routes_table(&self, filter: Option<IpNet>) -> Vec<(IpNet, Vec<Candidate>)> {
        let mut prefixes: Vec<IpNet> = self
            .loc
            .best_routes()
            .map(|r| r.prefix)
            .filter(|p| filter.is_none_or(|f| f.contains(p)))
            .collect();
        prefixes.sort();
        prefixes
            .into_iter()
            .map(|prefix| {
                let candidates = self
                    .loc
                    .candidates(&prefix)
                    .into_iter()
                    .map(|(route, standing)| Candidate {
                        peer: match route.source {
                            Source::Local => None,
                            Source::Peer(info) => self
                                .peers
                                .iter()
                                .find(|p| p.settings.address == info.address)
                                .map(|p| p.settings.name.clone()),
                        },
                        route,
                        standing,
                    })
                    .collect();
                (prefix, candidates)
            })
            .collect()
    }

    /// Every route the kernel should have now, for a full resync.
    pub fn kernel_routes(&self) -> Vec<(IpNet, IpAddr)> {
        self.loc
            .best_routes()
            .filter(|r| matches!(r.source, Source::Peer(_)))
            .map(|r| (r.prefix, r.attributes.next_hop))
            .collect()
    }

    /// Restarts a peer's session by hand: stops it with an administrative
    /// reset (when it is up) and starts it again, e.g. after max-prefix
    /// stopped it.
    pub fn reset(&mut self, peer: PeerId) -> Vec<Output> {
        let mut out = Vec::new();
        let notification =
            Notification::shutdown(subcode::ADMINISTRATIVE_RESET, "reset by the operator");
        self.handle(peer, Event::Stop(notification), &mut out);
        self.handle(peer, Event::Start, &mut out);
        out
    }

    /// Stops every session with a shutdown communication (RFC 8203).
    pub fn shutdown(&mut self, message: &str) -> Vec<Output> {
        let mut out = Vec::new();
        for id in 0..self.peers.len() {
            let notification = Notification::shutdown(subcode::ADMINISTRATIVE_SHUTDOWN, message);
            self.handle(id, Event::Stop(notification), &mut out);
        }
        out
    }
}

/// Our own networks: IGP origin, empty path; the next hop is set per peer
/// on export.
fn own_attributes(prefix: &IpNet) -> Arc<PathAttributes> {
    Arc::new(PathAttributes {
        origin: Origin::Igp,
        as_path: AsPath::default(),
        next_hop: match prefix {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        },
        med: None,
        local_pref: None,
        communities: Vec::new(),
    })
}

#[cfg(test)]
#[path = "speaker_tests.rs"]
mod tests;
