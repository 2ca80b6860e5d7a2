#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use proptest::prelude::*;

use super::*;
use crate::attr_store::MIN_SWEEP;
use crate::policy::{Import, Policy, PrefixList, Rejection};
use crate::rib_out::{AdjRibOut, NextHops};
use crate::route::{AsPath, Asn, Origin, PeerInfo, Source, Update};
use crate::test_support::attrs;

const LOCAL_ASN: Asn = 65000;

fn net(text: &str) -> IpNet {
    text.parse().unwrap()
}

/// Peer `n`: address 192.0.2.n, router id 10.0.0.n.
fn peer(n: u8, asn: Asn) -> PeerInfo {
    PeerInfo {
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        router_id: Ipv4Addr::new(10, 0, 0, n),
        asn,
        ebgp: asn != LOCAL_ASN,
    }
}

fn route(prefix: &str, attributes: PathAttributes, from: PeerInfo) -> Route {
    Route {
        prefix: net(prefix),
        attributes: Arc::new(attributes),
        source: Source::Peer(from),
    }
}

fn change(route: &Route) -> RibChange {
    RibChange {
        prefix: route.prefix,
        attributes: Some(Arc::clone(&route.attributes)),
    }
}

fn insert(rib: &mut LocRib, route: &Route) -> Vec<BestChange> {
    rib.update(route.source, &[change(route)])
}

/// Runs the decision over `routes` for one prefix: the winner's index and
/// the losers' reasons.
fn decide_among(routes: &[Route]) -> (usize, Vec<Standing>) {
    let mut rib = LocRib::new();
    for r in routes {
        insert(&mut rib, r);
    }
    let candidates = rib.candidates(&routes[0].prefix);
    assert_eq!(candidates[0].1, Standing::Best);
    let index = |r: &Route| routes.iter().position(|x| x == r).unwrap();
    let winner = index(&candidates[0].0);
    let mut standings = vec![Standing::Best; routes.len()];
    for (r, s) in candidates {
        standings[index(&r)] = s;
    }
    assert_eq!(rib.best(&routes[0].prefix).as_ref(), Some(&routes[winner]));
    (winner, standings)
}

/// `a` beats `b`, in either arrival order, and `b` lost for `reason`.
fn beats(a: Route, b: Route, reason: Reason) {
    for routes in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let (winner, standings) = decide_among(&routes);
        assert_eq!(routes[winner], a, "winner with arrival order {routes:?}");
        assert_eq!(standings[1 - winner], Standing::Lost(reason));
    }
}

#[test]
fn highest_local_preference_first() {
    let mut high = attrs(&[65001, 65002, 65003]);
    high.local_pref = Some(200);
    high.origin = Origin::Incomplete;
    beats(
        route("10.0.0.0/24", high, peer(9, 65001)),
        route("10.0.0.0/24", attrs(&[65002]), peer(1, 65002)),
        Reason::LocalPreference,
    );
    // A missing LOCAL_PREF counts as 100.
    let mut low = attrs(&[65002]);
    low.local_pref = Some(99);
    beats(
        route("10.0.0.0/24", attrs(&[65001, 65003]), peer(2, 65001)),
        route("10.0.0.0/24", low, peer(1, 65002)),
        Reason::LocalPreference,
    );
}

#[test]
fn then_shortest_as_path() {
    let mut short = attrs(&[65001]);
    short.origin = Origin::Incomplete;
    short.med = Some(1000);
    beats(
        route("10.0.0.0/24", short, peer(9, 65001)),
        route("10.0.0.0/24", attrs(&[65001, 65002]), peer(1, 65001)),
        Reason::AsPathLength,
    );
}

#[test]
fn then_lowest_origin() {
    let mut egp = attrs(&[65002]);
    egp.origin = Origin::Egp;
    beats(
        route("10.0.0.0/24", attrs(&[65001]), peer(9, 65001)),
        route("10.0.0.0/24", egp.clone(), peer(1, 65002)),
        Reason::Origin,
    );
    let mut incomplete = attrs(&[65002]);
    incomplete.origin = Origin::Incomplete;
    beats(
        route("10.0.0.0/24", egp, peer(9, 65001)),
        route("10.0.0.0/24", incomplete, peer(1, 65002)),
        Reason::Origin,
    );
}

#[test]
fn then_lowest_med_from_the_same_neighbour_as() {
    let mut low = attrs(&[65001, 65010]);
    low.med = Some(5);
    let mut high = attrs(&[65001, 65020]);
    high.med = Some(10);
    beats(
        route("10.0.0.0/24", low, peer(9, 65001)),
        route("10.0.0.0/24", high.clone(), peer(1, 65001)),
        Reason::Med,
    );
    // A missing MED counts as 0.
    beats(
        route("10.0.0.0/24", attrs(&[65001, 65010]), peer(9, 65001)),
        route("10.0.0.0/24", high, peer(1, 65001)),
        Reason::Med,
    );
}

#[test]
fn med_is_not_compared_across_neighbour_ases() {
    let mut low = attrs(&[65002]);
    low.med = Some(0);
    let mut high = attrs(&[65001]);
    high.med = Some(50);
    // The higher MED wins on router id: MED did not count.
    beats(
        route("10.0.0.0/24", high, peer(1, 65001)),
        route("10.0.0.0/24", low, peer(2, 65002)),
        Reason::RouterId,
    );
}

#[test]
fn med_elimination_is_set_wise() {
    // A pairwise comparison is not transitive here: b beats a (MED), c
    // beats b (router id), a beats c (router id). RFC 4271 eliminates a
    // first, then c wins, in every arrival order.
    let mut a = attrs(&[65001]);
    a.med = Some(10);
    let mut b = attrs(&[65001]);
    b.med = Some(5);
    let a = route("10.0.0.0/24", a, peer(1, 65001));
    let b = route("10.0.0.0/24", b, peer(3, 65001));
    let c = route("10.0.0.0/24", attrs(&[65002]), peer(2, 65002));
    for order in [
        [&a, &b, &c],
        [&a, &c, &b],
        [&b, &a, &c],
        [&b, &c, &a],
        [&c, &a, &b],
        [&c, &b, &a],
    ] {
        let routes: Vec<Route> = order.iter().map(|r| (*r).clone()).collect();
        let (winner, standings) = decide_among(&routes);
        assert_eq!(routes[winner], c);
        for (r, s) in routes.iter().zip(standings) {
            if *r == a {
                assert_eq!(s, Standing::Lost(Reason::Med));
            }
            if *r == b {
                assert_eq!(s, Standing::Lost(Reason::RouterId));
            }
        }
    }
}

#[test]
fn then_ebgp_over_ibgp() {
    // The iBGP route has the lower router id and address.
    beats(
        route("10.0.0.0/24", attrs(&[65001]), peer(9, 65001)),
        route("10.0.0.0/24", attrs(&[65002]), peer(1, LOCAL_ASN)),
        Reason::Ibgp,
    );
}

#[test]
fn then_lowest_router_id() {
    let mut high_address_low_id = peer(9, 65002);
    high_address_low_id.router_id = Ipv4Addr::new(1, 1, 1, 1);
    beats(
        route("10.0.0.0/24", attrs(&[65002]), high_address_low_id),
        route("10.0.0.0/24", attrs(&[65001]), peer(1, 65001)),
        Reason::RouterId,
    );
}

#[test]
fn then_lowest_peer_address() {
    let mut same_id = peer(9, 65002);
    same_id.router_id = Ipv4Addr::new(10, 0, 0, 1);
    beats(
        route("10.0.0.0/24", attrs(&[65001]), peer(1, 65001)),
        route("10.0.0.0/24", attrs(&[65002]), same_id),
        Reason::PeerAddress,
    );
    // IPv4 peers sort before IPv6 ones.
    let mut v6 = peer(1, 65002);
    v6.address = IpAddr::V6(Ipv6Addr::LOCALHOST);
    beats(
        route("10.0.0.0/24", attrs(&[65001]), peer(1, 65001)),
        route("10.0.0.0/24", attrs(&[65002]), v6),
        Reason::PeerAddress,
    );
}

#[test]
fn local_routes_beat_learned_ones() {
    let mut learned = attrs(&[]);
    learned.local_pref = Some(1000);
    let local = Route {
        prefix: net("10.0.0.0/24"),
        attributes: Arc::new(attrs(&[])),
        source: Source::Local,
    };
    beats(
        local,
        route("10.0.0.0/24", learned, peer(1, LOCAL_ASN)),
        Reason::Learned,
    );
}

#[test]
fn reasons_read_as_routerctl_shows_them() {
    assert_eq!(Standing::Best.to_string(), "best");
    assert_eq!(
        Standing::Lost(Reason::Med).to_string(),
        "higher MED (same neighbour AS)"
    );
    assert_eq!(
        Standing::Lost(Reason::Ibgp).to_string(),
        "iBGP (eBGP preferred)"
    );
}

fn update(announced: &[&str], attributes: PathAttributes) -> Update {
    Update {
        withdrawn: Vec::new(),
        announced: announced.iter().map(|p| net(p)).collect(),
        attributes: Some(Arc::new(attributes)),
    }
}

fn withdraw(prefixes: &[&str]) -> Update {
    Update {
        withdrawn: prefixes.iter().map(|p| net(p)).collect(),
        ..Update::default()
    }
}

/// (prefix, old best peer, new best peer) with 0 for none.
fn summary(loc: &LocRib, changes: &[BestChange]) -> Vec<(IpNet, u8, u8)> {
    let who = |r: &Option<RouteRef>| match r.map(|r| loc.source(r)) {
        None => 0,
        Some(Source::Local) => 255,
        Some(Source::Peer(p)) => match p.address {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(_) => 254,
        },
    };
    let mut out: Vec<_> = changes
        .iter()
        .map(|c| (c.prefix, who(&c.old), who(&c.new)))
        .collect();
    out.sort();
    out
}

/// A speaker's RIBs for the tests: Adj-RIBs-In in front of one Loc-RIB.
struct Speaker {
    peers: Vec<AdjRibIn>,
    loc: LocRib,
}

impl Speaker {
    fn new(peers: &[PeerInfo]) -> Speaker {
        Speaker {
            peers: peers.iter().map(|p| AdjRibIn::new(*p)).collect(),
            loc: LocRib::new(),
        }
    }

    fn receive(&mut self, n: u8, update: &Update) -> Vec<(IpNet, u8, u8)> {
        let changes = self.apply(n, update);
        summary(&self.loc, &changes)
    }

    /// The peer's UPDATE through an accept-all import policy.
    fn apply(&mut self, n: u8, update: &Update) -> Vec<BestChange> {
        let adj = self
            .peers
            .iter_mut()
            .find(|a| a.peer().address == IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)))
            .unwrap();
        let policy = Policy::default();
        let import = Import::new(LOCAL_ASN, adj.peer().ebgp, Some(&policy));
        adj.apply(update, &import, &mut self.loc)
    }
}

#[test]
fn best_changes_on_announce_and_withdraw() {
    let p = net("10.0.0.0/24");
    let mut s = Speaker::new(&[peer(1, 65001), peer(2, 65002)]);
    assert_eq!(
        s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001, 65100]))),
        [(p, 0, 1)]
    );
    // The same again: nothing moves.
    assert_eq!(
        s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001, 65100]))),
        []
    );
    // A worse route from peer 2 is only a candidate.
    assert_eq!(
        s.receive(2, &update(&["10.0.0.0/24"], attrs(&[65002, 65200, 65100]))),
        []
    );
    assert_eq!(s.loc.candidates(&p).len(), 2);
    // Peer 2 improves and wins.
    assert_eq!(
        s.receive(2, &update(&["10.0.0.0/24"], attrs(&[65002]))),
        [(p, 1, 2)]
    );
    // Peer 2 withdraws: back to peer 1.
    assert_eq!(s.receive(2, &withdraw(&["10.0.0.0/24"])), [(p, 2, 1)]);
    // Withdrawing what was never sent changes nothing.
    assert_eq!(s.receive(2, &withdraw(&["10.0.0.0/24", "10.9.0.0/16"])), []);
    // Peer 1 changes its attributes: same source, still a change.
    assert_eq!(
        s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001]))),
        [(p, 1, 1)]
    );
    assert_eq!(s.receive(1, &withdraw(&["10.0.0.0/24"])), [(p, 1, 0)]);
    assert!(s.loc.is_empty());
    assert_eq!(s.loc.best(&p), None);
    assert!(s.loc.candidates(&p).is_empty());
}

#[test]
fn withdrawn_and_announced_together_means_announced() {
    let mut s = Speaker::new(&[peer(1, 65001)]);
    s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001])));
    let mut both = update(&["10.0.0.0/24"], attrs(&[65001, 65002]));
    both.withdrawn = vec![net("10.0.0.0/24")];
    assert_eq!(s.receive(1, &both), [(net("10.0.0.0/24"), 1, 1)]);
    assert!(s.loc.best(&net("10.0.0.0/24")).is_some());
}

#[test]
fn refused_announcement_withdraws_the_previous_one() {
    let mut adj = AdjRibIn::new(peer(1, 65001));
    let policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 10.0.0.0/8 le 24"]).unwrap()),
        ..Policy::default()
    };
    let import = Import::new(LOCAL_ASN, true, Some(&policy));
    let mut loc = LocRib::new();
    let changes = adj.apply(
        &update(&["10.0.0.0/24", "10.1.0.0/25"], attrs(&[65001])),
        &import,
        &mut loc,
    );
    assert_eq!(changes.len(), 1);
    assert_eq!((adj.len(), adj.received()), (1, 2));
    assert_eq!(adj.rejected(), 1);
    assert_eq!(
        adj.last_rejection(),
        Some((net("10.1.0.0/25"), Rejection::PrefixNotListed))
    );
    // Now with our AS in the path: the earlier route goes.
    let changes = adj.apply(
        &update(&["10.0.0.0/24"], attrs(&[65001, LOCAL_ASN])),
        &import,
        &mut loc,
    );
    assert_eq!(summary(&loc, &changes), [(net("10.0.0.0/24"), 1, 0)]);
    assert!(adj.is_empty());
    assert!(loc.is_empty());
    // RFC 8212: no policy on eBGP, nothing accepted.
    let changes = adj.apply(
        &update(&["10.0.0.0/24"], attrs(&[65001])),
        &Import::new(LOCAL_ASN, true, None),
        &mut loc,
    );
    assert!(changes.is_empty());
    assert_eq!(adj.last_rejection().map(|r| r.1), Some(Rejection::NoPolicy));
}

#[test]
fn peer_down_moves_the_bests_it_held() {
    let mut s = Speaker::new(&[peer(1, 65001), peer(2, 65002)]);
    s.receive(1, &update(&["10.0.0.0/24", "10.0.1.0/24"], attrs(&[65001])));
    s.receive(2, &update(&["10.0.0.0/24"], attrs(&[65002, 65003])));
    s.receive(2, &update(&["10.0.2.0/24"], attrs(&[65002])));
    // Peer 2 holds the best for 10.0.2.0/24 only.
    let moved = s.loc.remove_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(summary(&s.loc, &moved), [(net("10.0.2.0/24"), 2, 0)]);
    assert_eq!(s.loc.candidates(&net("10.0.0.0/24")).len(), 1);
    let moved = s.loc.remove_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(
        summary(&s.loc, &moved),
        [(net("10.0.0.0/24"), 1, 0), (net("10.0.1.0/24"), 1, 0)]
    );
    assert!(s.loc.is_empty());
    // A peer that held nothing.
    assert!(
        s.loc
            .remove_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)))
            .is_empty()
    );
}

#[test]
fn peer_down_falls_back_to_the_next_candidate() {
    let mut s = Speaker::new(&[peer(1, 65001), peer(2, 65002), peer(3, 65003)]);
    s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001])));
    s.receive(2, &update(&["10.0.0.0/24"], attrs(&[65002, 65004])));
    s.receive(3, &update(&["10.0.0.0/24"], attrs(&[65003, 65004, 65005])));
    let moved = s.loc.remove_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(summary(&s.loc, &moved), [(net("10.0.0.0/24"), 1, 2)]);
    let moved = s.loc.remove_peer(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(summary(&s.loc, &moved), [(net("10.0.0.0/24"), 2, 3)]);
}

#[test]
fn local_origination() {
    let p = net("10.0.0.0/24");
    let mut s = Speaker::new(&[peer(1, 65001)]);
    s.receive(1, &update(&["10.0.0.0/24"], attrs(&[65001])));
    let moved = s.loc.originate(p, Arc::new(attrs(&[]))).unwrap();
    assert_eq!(summary(&s.loc, &[moved]), [(p, 1, 255)]);
    assert!(s.loc.originate(p, Arc::new(attrs(&[]))).is_none());
    let moved = s.loc.withdraw_local(p).unwrap();
    assert_eq!(summary(&s.loc, &[moved]), [(p, 255, 1)]);
    assert!(s.loc.withdraw_local(p).is_none());
}

fn next_hops() -> NextHops {
    NextHops {
        ipv4: Some(Ipv4Addr::new(192, 0, 2, 100)),
        ipv6: Some("2001:db8::100".parse().unwrap()),
    }
}

fn announced(updates: &[Update]) -> BTreeSet<IpNet> {
    updates
        .iter()
        .flat_map(|u| u.announced.iter().copied())
        .collect()
}

fn withdrawn(updates: &[Update]) -> BTreeSet<IpNet> {
    updates
        .iter()
        .flat_map(|u| u.withdrawn.iter().copied())
        .collect()
}

fn set(prefixes: &[&str]) -> BTreeSet<IpNet> {
    prefixes.iter().map(|p| net(p)).collect()
}

#[test]
fn split_horizon_and_ebgp_rewrites() {
    let accept = Policy::default();
    let (a, b) = (peer(1, 65001), peer(2, 65002));
    let mut s = Speaker::new(&[a, b]);
    let mut learned = attrs(&[65001, 65100]);
    learned.med = Some(7);
    let changes = s.apply(1, &update(&["10.0.0.0/24"], learned));
    let best = s.loc.best(&net("10.0.0.0/24")).unwrap();

    let to_a = AdjRibOut::new(LOCAL_ASN, a, next_hops(), Some(&accept));
    assert!(to_a.updates(&s.loc, &changes).is_empty());
    assert_eq!(to_a.export(&best), Err(Rejection::SplitHorizon));

    let to_b = AdjRibOut::new(LOCAL_ASN, b, next_hops(), Some(&accept));
    let updates = to_b.updates(&s.loc, &changes);
    assert_eq!(updates.len(), 1);
    let sent = updates[0].attributes.as_ref().unwrap();
    assert_eq!(sent.as_path, AsPath::sequence([LOCAL_ASN, 65001, 65100]));
    assert_eq!(sent.next_hop, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)));
    assert_eq!(sent.local_pref, None);
    assert_eq!(sent.med, None);
    assert_eq!(announced(&updates), set(&["10.0.0.0/24"]));

    // The best moves to b (a shorter path): a now gets it, b must drop it.
    let moved = s.apply(2, &update(&["10.0.0.0/24"], attrs(&[65002])));
    assert_eq!(summary(&s.loc, &moved), [(best.prefix, 1, 2)]);
    assert_eq!(
        withdrawn(&to_b.updates(&s.loc, &moved)),
        set(&["10.0.0.0/24"])
    );
    let to_a_updates = to_a.updates(&s.loc, &moved);
    assert_eq!(announced(&to_a_updates), set(&["10.0.0.0/24"]));
    assert!(withdrawn(&to_a_updates).is_empty());
    // The export policy may set a MED toward eBGP.
    let with_med = Policy {
        set_med: Some(42),
        ..Policy::default()
    };
    let to_b = AdjRibOut::new(LOCAL_ASN, b, next_hops(), Some(&with_med));
    assert_eq!(to_b.export(&best).unwrap().attributes.med, Some(42));
}

#[test]
fn ibgp_routes_are_not_sent_to_ibgp_peers() {
    let (i1, i2, e) = (peer(1, LOCAL_ASN), peer(2, LOCAL_ASN), peer(3, 65003));
    let mut learned = attrs(&[65100]);
    learned.local_pref = Some(300);
    learned.med = Some(7);
    let from_i1 = route("10.0.0.0/24", learned, i1);
    let accept = Policy::default();
    assert_eq!(
        AdjRibOut::new(LOCAL_ASN, i2, next_hops(), None).export(&from_i1),
        Err(Rejection::IbgpToIbgp)
    );
    let to_e = AdjRibOut::new(LOCAL_ASN, e, next_hops(), Some(&accept));
    let sent = to_e.export(&from_i1).unwrap();
    assert_eq!(
        sent.attributes.as_path,
        AsPath::sequence([LOCAL_ASN, 65100])
    );
    assert_eq!(sent.attributes.local_pref, None);
    assert_eq!(sent.attributes.med, None);

    // eBGP-learned and local routes do go to iBGP peers, next hop self,
    // LOCAL_PREF always present, MED kept, path untouched.
    let mut from_e = attrs(&[65003]);
    from_e.med = Some(9);
    let from_e = route("10.0.1.0/24", from_e, e);
    let to_i2 = AdjRibOut::new(LOCAL_ASN, i2, next_hops(), None);
    let sent = to_i2.export(&from_e).unwrap();
    assert_eq!(sent.attributes.as_path, AsPath::sequence([65003]));
    assert_eq!(sent.attributes.local_pref, Some(DEFAULT_LOCAL_PREF));
    assert_eq!(sent.attributes.med, Some(9));
    assert_eq!(
        sent.attributes.next_hop,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))
    );
    let local = Route {
        prefix: net("2001:db8:1::/48"),
        attributes: Arc::new(attrs(&[])),
        source: Source::Local,
    };
    let sent = to_i2.export(&local).unwrap();
    assert!(sent.attributes.as_path.is_empty());
    assert_eq!(
        sent.attributes.next_hop,
        IpAddr::V6("2001:db8::100".parse().unwrap())
    );
    // Toward eBGP a local route carries just our AS.
    let sent = to_e.export(&local).unwrap();
    assert_eq!(sent.attributes.as_path, AsPath::sequence([LOCAL_ASN]));
}

#[test]
fn export_defaults_and_refusals() {
    let e = peer(3, 65003);
    let from_other = route("10.0.0.0/24", attrs(&[65001, 65003]), peer(1, 65001));
    let accept = Policy::default();
    // RFC 8212 on export.
    assert_eq!(
        AdjRibOut::new(LOCAL_ASN, e, next_hops(), None).export(&from_other),
        Err(Rejection::NoPolicy)
    );
    // The peer's own AS is in the path.
    assert_eq!(
        AdjRibOut::new(LOCAL_ASN, e, next_hops(), Some(&accept)).export(&from_other),
        Err(Rejection::PeerAsInPath(65003))
    );
    // No IPv6 address of ours on this session.
    let v4_only = NextHops {
        ipv6: None,
        ..next_hops()
    };
    let v6 = route("2001:db8::/32", attrs(&[65001]), peer(1, 65001));
    assert_eq!(
        AdjRibOut::new(LOCAL_ASN, e, v4_only, Some(&accept)).export(&v6),
        Err(Rejection::NoNextHop { ipv6: true })
    );
}

#[test]
fn prefixes_with_the_same_outgoing_attributes_share_an_update() {
    let (a, b) = (peer(1, 65001), peer(2, 65002));
    let accept = Policy::default();
    let mut s = Speaker::new(&[a]);
    // Two UPDATEs with equal attributes (two Arcs) and one different.
    let mut changes = Vec::new();
    for u in [
        update(&["10.0.0.0/24", "10.0.1.0/24"], attrs(&[65001])),
        update(&["10.0.2.0/24"], attrs(&[65001])),
        update(&["10.0.3.0/24"], attrs(&[65001, 65009])),
    ] {
        let adj = &mut s.peers[0];
        let import = Import::new(LOCAL_ASN, true, Some(&accept));
        changes.extend(adj.apply(&u, &import, &mut s.loc));
    }
    let to_b = AdjRibOut::new(LOCAL_ASN, b, next_hops(), Some(&accept));
    let updates = to_b.updates(&s.loc, &changes);
    let mut sizes: Vec<usize> = updates.iter().map(|u| u.announced.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 3]);
    let full = to_b.full_table(&s.loc);
    let mut sizes: Vec<usize> = full.iter().map(|u| u.announced.len()).collect();
    sizes.sort();
    assert_eq!(sizes, [1, 3]);

    // All withdrawn: one UPDATE.
    let moved = s.loc.remove_peer(a.address);
    let updates = to_b.updates(&s.loc, &moved);
    assert_eq!(updates.len(), 1);
    assert_eq!(
        withdrawn(&updates),
        set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"])
    );
}

#[test]
fn concatenated_changes_give_their_net_effect() {
    let (a, b, c) = (peer(1, 65001), peer(2, 65002), peer(3, 65003));
    let accept = Policy::default();
    let to_c = AdjRibOut::new(LOCAL_ASN, c, next_hops(), Some(&accept));
    let mut s = Speaker::new(&[a, b]);
    let mut loc_changes = Vec::new();
    // Announced, then withdrawn, before anything went out: nothing to send.
    for u in [
        update(&["10.0.0.0/24"], attrs(&[65001])),
        withdraw(&["10.0.0.0/24"]),
    ] {
        let adj = &mut s.peers[0];
        loc_changes.extend(adj.apply(&u, &Import::new(LOCAL_ASN, true, Some(&accept)), &mut s.loc));
    }
    assert_eq!(loc_changes.len(), 2);
    assert!(to_c.updates(&s.loc, &loc_changes).is_empty());

    // Two bests in a row: only the last one is sent.
    let r1 = route("10.0.0.0/24", attrs(&[65001]), a);
    let mut preferred = attrs(&[65002]);
    preferred.local_pref = Some(200);
    let r2 = route("10.0.0.0/24", preferred, b);
    let mut rib = LocRib::new();
    let mut changes = insert(&mut rib, &r1);
    changes.extend(insert(&mut rib, &r2));
    assert_eq!(
        summary(&rib, &changes),
        [(r1.prefix, 0, 1), (r1.prefix, 1, 2)]
    );
    let updates = to_c.updates(&rib, &changes);
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0].attributes.as_ref().unwrap().as_path,
        AsPath::sequence([LOCAL_ASN, 65002])
    );
}

#[test]
fn same_outgoing_attributes_send_nothing() {
    // Two peers in one AS announce the same path: once next hop self is
    // applied the third peer cannot tell them apart.
    let (a1, a2, c) = (peer(1, 65001), peer(2, 65001), peer(3, 65003));
    let accept = Policy::default();
    let to_c = AdjRibOut::new(LOCAL_ASN, c, next_hops(), Some(&accept));
    let r1 = route("10.0.0.0/24", attrs(&[65001]), a1);
    let r2 = route("10.0.0.0/24", attrs(&[65001]), a2);
    let mut rib = LocRib::new();
    insert(&mut rib, &r1);
    insert(&mut rib, &r2);
    // a1 wins on router id; its withdrawal moves the best to a2.
    let changes = rib.update(
        r1.source,
        &[RibChange {
            prefix: r1.prefix,
            attributes: None,
        }],
    );
    assert_eq!(summary(&rib, &changes), [(r1.prefix, 1, 2)]);
    assert!(to_c.updates(&rib, &changes).is_empty());
}

#[test]
fn export_policy_change_is_diffed() {
    let (a, b) = (peer(1, 65001), peer(2, 65002));
    let mut s = Speaker::new(&[a]);
    s.receive(1, &update(&["10.0.0.0/24", "10.1.0.0/24"], attrs(&[65001])));
    let before_policy = Policy::default();
    let after_policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 10.0.0.0/16 le 24"]).unwrap()),
        set_med: Some(5),
        ..Policy::default()
    };
    let before = AdjRibOut::new(LOCAL_ASN, b, next_hops(), Some(&before_policy));
    let after = AdjRibOut::new(LOCAL_ASN, b, next_hops(), Some(&after_policy));
    let updates = after.policy_changed(&before, &s.loc);
    assert_eq!(withdrawn(&updates), set(&["10.1.0.0/24"]));
    assert_eq!(announced(&updates), set(&["10.0.0.0/24"]));
    assert!(before.policy_changed(&before, &s.loc).is_empty());
}

/// One candidate of the property test: made up to collide often.
#[derive(Debug, Clone)]
struct Spec {
    local_pref: Option<u32>,
    path_len: usize,
    neighbour: Asn,
    origin: u8,
    med: Option<u32>,
    ebgp: bool,
    router_id: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(99u32..=101),
        1usize..=3,
        65001u32..=65003,
        0u8..=2,
        prop::option::of(0u32..=2),
        any::<bool>(),
        1u8..=3,
    )
        .prop_map(
            |(local_pref, path_len, neighbour, origin, med, ebgp, router_id)| Spec {
                local_pref,
                path_len,
                neighbour,
                origin,
                med,
                ebgp,
                router_id,
            },
        )
}

/// Candidate `index`, from peer 192.0.2.(index + 1); index 0 may be local.
fn candidate(index: usize, spec: &Spec, local: bool) -> Route {
    let mut path = vec![spec.neighbour];
    path.extend((1..spec.path_len).map(|i| 65100 + i as Asn));
    let attributes = Arc::new(PathAttributes {
        origin: match spec.origin {
            0 => Origin::Igp,
            1 => Origin::Egp,
            _ => Origin::Incomplete,
        },
        as_path: AsPath::sequence(path),
        next_hop: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        med: spec.med,
        local_pref: spec.local_pref,
        communities: Vec::new(),
    });
    let source = if local && index == 0 {
        Source::Local
    } else {
        Source::Peer(PeerInfo {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, index as u8 + 1)),
            router_id: Ipv4Addr::new(10, 0, 0, spec.router_id),
            asn: if spec.ebgp { spec.neighbour } else { LOCAL_ASN },
            ebgp: spec.ebgp,
        })
    };
    Route {
        prefix: net("10.0.0.0/24"),
        attributes,
        source,
    }
}

/// Candidates with their index (which fixes the peer), in order and shuffled.
type Arrivals = Vec<(usize, Spec)>;

/// Two arrival orders of the same candidates, and whether the first is local.
fn specs() -> impl Strategy<Value = (Arrivals, Arrivals, bool)> {
    (prop::collection::vec(spec(), 1..8), any::<bool>()).prop_flat_map(|(specs, local)| {
        let indexed: Vec<(usize, Spec)> = specs.into_iter().enumerate().collect();
        (
            Just(indexed.clone()),
            Just(indexed).prop_shuffle(),
            Just(local),
        )
    })
}

fn outcome(rib: &LocRib) -> (Route, Vec<(Route, Standing)>) {
    let p = net("10.0.0.0/24");
    let mut standings = rib.candidates(&p);
    standings.sort_by_key(|(r, _)| format!("{:?}", r.source));
    (rib.best(&p).unwrap(), standings)
}

proptest! {
    #[test]
    fn best_is_independent_of_arrival_order((ordered, shuffled, local) in specs()) {
        let mut first = LocRib::new();
        for (i, s) in &ordered {
            insert(&mut first, &candidate(*i, s, local));
        }
        let mut second = LocRib::new();
        for (i, s) in &shuffled {
            insert(&mut second, &candidate(*i, s, local));
        }
        prop_assert_eq!(outcome(&first), outcome(&second));
        // Exactly one best.
        let (_, standings) = outcome(&first);
        prop_assert_eq!(standings.iter().filter(|(_, s)| *s == Standing::Best).count(), 1);
    }

    #[test]
    fn best_is_independent_of_withdrawal_order(
        (ordered, shuffled, local) in specs(),
        keep in 1usize..8,
    ) {
        // Insert everything, withdraw all but `keep` candidates in two
        // orders, and compare with inserting the survivors alone.
        let keep = keep.min(ordered.len());
        let survivors: Vec<_> = ordered.iter().take(keep).collect();
        let mut direct = LocRib::new();
        for (i, s) in &survivors {
            insert(&mut direct, &candidate(*i, s, local));
        }
        for order in [&ordered, &shuffled] {
            let mut rib = LocRib::new();
            for (i, s) in order {
                insert(&mut rib, &candidate(*i, s, local));
            }
            for (i, s) in order {
                if *i >= keep {
                    let r = candidate(*i, s, local);
                    rib.update(r.source, &[RibChange { prefix: r.prefix, attributes: None }]);
                }
            }
            prop_assert_eq!(outcome(&rib), outcome(&direct));
        }
    }
}

/// A prefix of either family from a small universe, so that operations
/// hit the same prefixes often.
fn small_prefix() -> impl Strategy<Value = IpNet> {
    (any::<bool>(), 0u32..64, prop_oneof![Just(24u8), Just(25u8)]).prop_map(|(v6, n, len)| {
        if v6 {
            IpNet::new(
                IpAddr::V6(Ipv6Addr::from_bits(u128::from(n) << 96)),
                len + 24,
            )
        } else {
            IpNet::new(IpAddr::V4(Ipv4Addr::from_bits(n << 8)), len)
        }
        .unwrap()
    })
}

#[derive(Debug, Clone)]
enum MapOp {
    Insert(IpNet, u32),
    Remove(IpNet),
    /// Keeps the entries whose value is odd after adding the operand.
    Retain(u32),
}

proptest! {
    /// The prefix map agrees with a `HashMap` through insertions (new
    /// and replacing), removals (which move the last entry) and retains
    /// (which rebuild the index).
    #[test]
    fn prefix_map_matches_a_hash_map(ops in proptest::collection::vec(
        prop_oneof![
            (small_prefix(), any::<u32>()).prop_map(|(p, v)| MapOp::Insert(p, v)),
            small_prefix().prop_map(MapOp::Remove),
            any::<u32>().prop_map(MapOp::Retain),
        ],
        0..300,
    )) {
        let mut map: PrefixMap<u32> = PrefixMap::default();
        let mut model: std::collections::HashMap<IpNet, u32> = Default::default();
        for op in ops {
            match op {
                MapOp::Insert(prefix, value) => {
                    match map.find(&prefix) {
                        Some(slot) => *map.at_mut(slot).unwrap() = value,
                        None => map.push(prefix, value),
                    }
                    model.insert(prefix, value);
                }
                MapOp::Remove(prefix) => {
                    prop_assert_eq!(map.remove(&prefix), model.remove(&prefix));
                }
                MapOp::Retain(add) => {
                    map.retain(|_, v| v.wrapping_add(add) % 2 == 1);
                    model.retain(|_, v| v.wrapping_add(add) % 2 == 1);
                }
            }
            prop_assert_eq!(map.len(), model.len());
            for (prefix, value) in &model {
                prop_assert_eq!(map.get(prefix), Some(value));
            }
            let mut seen: Vec<(IpNet, u32)> = map.iter().map(|(p, v)| (p, *v)).collect();
            seen.sort();
            let mut expected: Vec<(IpNet, u32)> = model.iter().map(|(p, v)| (*p, *v)).collect();
            expected.sort();
            prop_assert_eq!(seen, expected);
        }
    }
}

#[test]
fn prefix_map_gives_capacity_back_when_mostly_empty() {
    let mut map: PrefixMap<u32> = PrefixMap::default();
    let prefixes: Vec<IpNet> = (0..100_000u32)
        .map(|i| IpNet::new(IpAddr::V4(Ipv4Addr::from_bits(i << 8)), 24).unwrap())
        .collect();
    for (i, prefix) in prefixes.iter().enumerate() {
        map.push(*prefix, i as u32);
    }
    let (entries, index) = map.capacity();
    assert!(entries >= 100_000 && index >= 100_000);
    // One by one, as withdrawals come.
    for prefix in &prefixes[..99_000] {
        assert!(map.remove(prefix).is_some());
    }
    let (entries, index) = map.capacity();
    assert!(entries < 10_000 && index < 10_000, "{entries} {index}");
    for (i, prefix) in prefixes[99_000..].iter().enumerate() {
        assert_eq!(map.get(prefix), Some(&((99_000 + i) as u32)));
    }
    // All at once, as a peer going down.
    map.retain(|_, _| false);
    assert!(map.is_empty());
    let (entries, index) = map.capacity();
    assert!(entries <= 2048 && index <= 2048, "{entries} {index}");
}

#[test]
fn equal_attribute_sets_from_separate_updates_share_one_arc() {
    let a = peer(1, 65001);
    let mut adj = AdjRibIn::new(a);
    let policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 0.0.0.0/0 le 32"]).unwrap()),
        ..Policy::default()
    };
    let import = Import::new(LOCAL_ASN, true, Some(&policy));
    let update = |prefix: &str| Update {
        withdrawn: Vec::new(),
        announced: vec![net(prefix)],
        attributes: Some(Arc::new(attrs(&[65001, 65100]))),
    };
    let mut loc = LocRib::new();
    adj.apply(&update("10.0.0.0/24"), &import, &mut loc);
    adj.apply(&update("10.0.1.0/24"), &import, &mut loc);
    let first = adj.get(&loc, &net("10.0.0.0/24")).unwrap();
    let second = adj.get(&loc, &net("10.0.1.0/24")).unwrap();
    assert!(Arc::ptr_eq(&first.attributes, &second.attributes));
}

#[test]
fn unused_interned_sets_are_swept_after_withdrawals() {
    let a = peer(1, 65001);
    let mut adj = AdjRibIn::new(a);
    let policy = Policy {
        prefixes: Some(PrefixList::parse(["permit 0.0.0.0/0 le 32"]).unwrap()),
        ..Policy::default()
    };
    let import = Import::new(LOCAL_ASN, true, Some(&policy));
    let mut loc = LocRib::new();
    let prefixes: Vec<IpNet> = (0..1000u32)
        .map(|i| IpNet::new(IpAddr::V4(Ipv4Addr::from_bits(i << 8)), 24).unwrap())
        .collect();
    // Swept after each UPDATE is handled, as the speaker does.
    for (i, prefix) in prefixes.iter().enumerate() {
        adj.apply(
            &Update {
                withdrawn: Vec::new(),
                announced: vec![*prefix],
                attributes: Some(Arc::new(attrs(&[65001, 4_200_000_000 + i as Asn]))),
            },
            &import,
            &mut loc,
        );
        loc.sweep();
    }
    assert_eq!(loc.attribute_sets(), 1000);
    for prefix in &prefixes {
        adj.apply(
            &Update {
                withdrawn: vec![*prefix],
                announced: Vec::new(),
                attributes: None,
            },
            &import,
            &mut loc,
        );
        loc.sweep();
    }
    assert!(adj.is_empty());
    assert!(loc.is_empty());
    assert!(loc.attribute_sets() < MIN_SWEEP, "{}", loc.attribute_sets());
}

#[test]
fn as_paths_pack_inline_and_boxed_alike() {
    use crate::route::{Segment, SegmentRef, Segments};
    let short = AsPath::sequence([65001, 65002]);
    let long = AsPath::sequence(1..=40);
    assert_eq!(short.len(), 2);
    assert_eq!(long.len(), 40);
    assert_eq!(long.first(), Some(1));
    assert!(long.contains(40) && !long.contains(41));
    // Built by pushing onto a short path until it spills: the same value
    // (and hash) as one built at once.
    let mut grown = AsPath::sequence([65001]);
    grown.segments.push(Segment::Set(vec![1, 2, 3, 4]));
    let at_once = AsPath {
        segments: [
            Segment::Sequence(vec![65001]),
            Segment::Set(vec![1, 2, 3, 4]),
        ]
        .into_iter()
        .collect::<Segments>(),
    };
    assert_eq!(grown, at_once);
    let hash =
        |p: &AsPath| std::hash::BuildHasher::hash_one(&foldhash::fast::FixedState::with_seed(1), p);
    assert_eq!(hash(&grown), hash(&at_once));
    assert_eq!(grown.len(), 2);
    assert_eq!(grown.to_string(), "65001 {1 2 3 4}");
    assert_eq!(
        grown.segments.iter().collect::<Vec<_>>(),
        vec![
            SegmentRef::Sequence(&[65001]),
            SegmentRef::Set(&[1, 2, 3, 4])
        ]
    );
    // Prepending grows the first sequence, or starts one before a set.
    assert_eq!(
        short.prepended(65000),
        AsPath::sequence([65000, 65001, 65002])
    );
    assert_eq!(
        long.prepended(0),
        AsPath::sequence(std::iter::once(0).chain(1..=40))
    );
    let mut set_first = AsPath::default();
    set_first.segments.push(Segment::Set(vec![7, 8]));
    assert_eq!(set_first.prepended(65000).to_string(), "65000 {7 8}");
    assert_eq!(set_first.len(), 1);
    assert_eq!(set_first.first(), None);
    assert!(AsPath::sequence([]).is_empty());
}

#[test]
fn a_loc_rib_entry_stays_small() {
    // What a million IPv4 prefixes cost before the index: the key and one
    // candidate, or a removed entry's hole.
    assert_eq!(std::mem::size_of::<RouteRef>(), 8);
    assert_eq!(std::mem::size_of::<Option<Candidates>>(), 24);
    assert_eq!(
        std::mem::size_of::<(ipnet::Ipv4Net, Option<Candidates>)>(),
        32
    );
}

#[test]
fn prefix_map_holes_are_squeezed_out_without_losing_entries() {
    // Enough removals to compact several times, interleaved with inserts
    // that land after the holes, checked against a HashMap.
    let mut map: PrefixMap<u32> = PrefixMap::default();
    let mut model: std::collections::HashMap<IpNet, u32> = Default::default();
    let prefix = |i: u32| IpNet::new(IpAddr::V4(Ipv4Addr::from_bits(i << 8)), 24).unwrap();
    for i in 0..20_000u32 {
        map.push(prefix(i), i);
        model.insert(prefix(i), i);
    }
    // A fixed pseudo-random order (multiplication by an odd constant is a
    // permutation modulo a power of two).
    for round in 0..16_384u32 {
        let victim = prefix(round.wrapping_mul(40_503) % 16_384);
        assert_eq!(map.remove(&victim), model.remove(&victim));
        if round % 4 == 0 {
            let fresh = prefix(100_000 + round);
            map.push(fresh, round);
            model.insert(fresh, round);
        }
    }
    assert_eq!(map.len(), model.len());
    for (prefix, value) in &model {
        assert_eq!(map.get(prefix), Some(value));
        let slot = map.find(prefix).unwrap();
        assert_eq!(map.at(slot), Some(value));
    }
    assert_eq!(map.iter().count(), model.len());
    assert!(map.find(&prefix(0)).is_none());
}
