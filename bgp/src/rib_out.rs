//! What one peer is sent: the export of Loc-RIB changes toward a session,
//! grouped into UPDATEs by outgoing attributes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::policy::{Filter, Policy, Rejection};
use crate::rib::{BestChange, DEFAULT_LOCAL_PREF, LocRib, RouteRef};
use crate::route::{Asn, PathAttributes, PeerInfo, Route, Source, Update};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The addresses this speaker puts as next hop, per family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NextHops {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// What one peer is sent. Stateless: the peer holds what `export` makes of
/// each best route, so a change of best is diffed through `export` twice
/// rather than remembered (a million prefixes per peer would cost a second
/// table each). It follows that the export policy must not change between
/// calls without a resend: after a policy change, diff with
/// `policy_changed`.
///
/// Always next-hop-self. Toward eBGP peers the path gets our AS in front,
/// LOCAL_PREF is removed and so is MED: a received MED must not reach
/// another AS (RFC 4271 5.1.4), and dropping our own too keeps one rule;
/// the export policy's `set_med` is the way to send one.
#[derive(Debug, Clone, Copy)]
pub struct AdjRibOut<'a> {
    local_asn: Asn,
    peer: PeerInfo,
    next_hops: NextHops,
    filter: Filter<'a>,
}

impl<'a> AdjRibOut<'a> {
    /// `policy` is the session's export policy (RFC 8212 applies).
    pub fn new(
        local_asn: Asn,
        peer: PeerInfo,
        next_hops: NextHops,
        policy: Option<&'a Policy>,
    ) -> AdjRibOut<'a> {
        AdjRibOut {
            local_asn,
            peer,
            next_hops,
            filter: Filter::new(peer.ebgp, policy),
        }
    }

    /// RFC 8212's default: an eBGP session without an export policy, to
    /// which no change needs to be looked at.
    pub fn exports_nothing(&self) -> bool {
        matches!(self.filter, Filter::RejectAll)
    }

    /// The route as this peer would receive it, or why it is not sent.
    pub fn export(&self, route: &Route) -> Result<Route, Rejection> {
        self.check_route(&route.source, &route.prefix)?;
        let attributes = self.outgoing(&route.attributes, is_ipv6(&route.prefix))?;
        Ok(Route {
            prefix: route.prefix,
            attributes: Arc::new(attributes),
            source: route.source,
        })
    }

    /// The UPDATEs that bring the peer from the old best routes to the new
    /// ones: withdrawals in one, then one per distinct set of outgoing
    /// attributes. Changes from several `LocRib` calls may be
    /// concatenated; a prefix listed more than once gets its net effect.
    /// Each `Update` can hold more prefixes than one message: the encoder
    /// splits it. `rib` is the Loc-RIB that returned the changes, not
    /// swept since.
    pub fn updates(&self, rib: &LocRib, changes: &[BestChange]) -> Vec<Update> {
        if self.exports_nothing() {
            return Vec::new();
        }
        let mut batch = Batch::new(self);
        let mut index: Map<IpNet, usize> = Map::default();
        // (prefix, group the peer has, group it must get)
        let mut actions: Vec<(IpNet, Option<usize>, Option<usize>)> = Vec::new();
        for change in changes {
            let mut group = |route: &RouteRef| {
                batch.group(&change.prefix, &rib.source(*route), rib.attributes(*route))
            };
            let now = change.new.as_ref().and_then(&mut group);
            match index.entry(change.prefix) {
                Entry::Occupied(entry) => actions[*entry.get()].2 = now,
                Entry::Vacant(entry) => {
                    let was = change.old.as_ref().and_then(&mut group);
                    // Neither route goes to this peer (split horizon,
                    // policy): nothing to remember. A later change of the
                    // same prefix starts from this one's new route, which
                    // the peer does not have either, so its own `old`
                    // tells the same.
                    if was.is_some() || now.is_some() {
                        entry.insert(actions.len());
                        actions.push((change.prefix, was, now));
                    }
                }
            }
        }
        let mut withdrawn = Vec::new();
        for (prefix, was, now) in actions {
            match (was, now) {
                _ if was == now => {}
                (_, Some(group)) => batch.groups[group].1.push(prefix),
                (_, None) => withdrawn.push(prefix),
            }
        }
        batch.finish(withdrawn)
    }

    /// Everything the peer should hold, for a session that just came up.
    pub fn full_table(&self, rib: &LocRib) -> Vec<Update> {
        if self.exports_nothing() {
            return Vec::new();
        }
        let mut batch = Batch::new(self);
        for route in rib.best_routes() {
            if let Some(group) = batch.group(&route.prefix, &route.source, &route.attributes) {
                batch.groups[group].1.push(route.prefix);
            }
        }
        batch.finish(Vec::new())
    }

    /// The UPDATEs that move the peer from what `before` exported to what
    /// `self` exports, for the same Loc-RIB: after an export policy or
    /// next-hop change.
    pub fn policy_changed(&self, before: &AdjRibOut<'_>, rib: &LocRib) -> Vec<Update> {
        if self.exports_nothing() && before.exports_nothing() {
            return Vec::new();
        }
        let mut old = Batch::new(before);
        let mut new = Batch::new(self);
        let mut withdrawn = Vec::new();
        for route in rib.best_routes() {
            let was = old
                .group(&route.prefix, &route.source, &route.attributes)
                .map(|g| Arc::clone(&old.groups[g].0));
            match new.group(&route.prefix, &route.source, &route.attributes) {
                Some(group) if was.as_ref() == Some(&new.groups[group].0) => {}
                Some(group) => new.groups[group].1.push(route.prefix),
                None if was.is_some() => withdrawn.push(route.prefix),
                None => {}
            }
        }
        new.finish(withdrawn)
    }

    /// The checks that depend on where the route came from and its prefix.
    fn check_route(&self, source: &Source, prefix: &IpNet) -> Result<(), Rejection> {
        if let Source::Peer(from) = source {
            if from.address == self.peer.address {
                return Err(Rejection::SplitHorizon);
            }
            if !from.ebgp && !self.peer.ebgp {
                return Err(Rejection::IbgpToIbgp);
            }
        }
        self.filter.check_prefix(prefix)
    }

    /// The checks and rewrites that depend only on the attributes and the
    /// family, so they run once per attribute set.
    fn outgoing(
        &self,
        attributes: &PathAttributes,
        ipv6: bool,
    ) -> Result<PathAttributes, Rejection> {
        if self.peer.ebgp && attributes.as_path.contains(self.peer.asn) {
            return Err(Rejection::PeerAsInPath(self.peer.asn));
        }
        self.filter.check_attributes(attributes)?;
        let next_hop = if ipv6 {
            self.next_hops.ipv6.map(IpAddr::V6)
        } else {
            self.next_hops.ipv4.map(IpAddr::V4)
        };
        let mut out = attributes.clone();
        out.next_hop = next_hop.ok_or(Rejection::NoNextHop { ipv6 })?;
        let policy = self.filter.policy();
        if self.peer.ebgp {
            out.as_path = attributes.as_path.prepended(self.local_asn);
            out.local_pref = None;
            out.med = None;
        } else {
            out.local_pref = policy
                .and_then(|p| p.set_local_pref)
                .or(attributes.local_pref)
                .or(Some(DEFAULT_LOCAL_PREF));
        }
        if let Some(med) = policy.and_then(|p| p.set_med) {
            out.med = Some(med);
        }
        Ok(out)
    }
}

fn is_ipv6(prefix: &IpNet) -> bool {
    matches!(prefix, IpNet::V6(_))
}

/// Outgoing attributes computed once per incoming attribute set and
/// family, and interned by value, so that prefixes that will travel
/// together share a group.
struct Batch<'o, 'a> {
    out: &'o AdjRibOut<'a>,
    cache: Map<(*const PathAttributes, bool), Option<usize>>,
    interned: Map<Arc<PathAttributes>, usize>,
    groups: Vec<(Arc<PathAttributes>, Vec<IpNet>)>,
}

impl<'o, 'a> Batch<'o, 'a> {
    fn new(out: &'o AdjRibOut<'a>) -> Batch<'o, 'a> {
        Batch {
            out,
            cache: Map::default(),
            interned: Map::default(),
            groups: Vec::new(),
        }
    }

    /// The group of the route's outgoing attributes, `None` when the route
    /// is not exported.
    fn group(
        &mut self,
        prefix: &IpNet,
        source: &Source,
        attributes: &Arc<PathAttributes>,
    ) -> Option<usize> {
        self.out.check_route(source, prefix).ok()?;
        let ipv6 = is_ipv6(prefix);
        // The pointer is a stable identity: every route in the batch is
        // borrowed for its whole life.
        let key = (Arc::as_ptr(attributes), ipv6);
        if let Some(group) = self.cache.get(&key) {
            return *group;
        }
        let group = match self.out.outgoing(attributes, ipv6) {
            Ok(attributes) => Some(self.intern(attributes)),
            Err(_) => None,
        };
        self.cache.insert(key, group);
        group
    }

    fn intern(&mut self, attributes: PathAttributes) -> usize {
        if let Some(group) = self.interned.get(&attributes) {
            return *group;
        }
        let attributes = Arc::new(attributes);
        let group = self.groups.len();
        self.groups.push((Arc::clone(&attributes), Vec::new()));
        self.interned.insert(attributes, group);
        group
    }

    fn finish(self, withdrawn: Vec<IpNet>) -> Vec<Update> {
        let mut updates = Vec::new();
        if !withdrawn.is_empty() {
            updates.push(Update {
                withdrawn,
                announced: Vec::new(),
                attributes: None,
            });
        }
        updates.extend(
            self.groups
                .into_iter()
                .filter(|(_, announced)| !announced.is_empty())
                .map(|(attributes, announced)| Update {
                    withdrawn: Vec::new(),
                    announced,
                    attributes: Some(attributes),
                }),
        );
        updates
    }
}
