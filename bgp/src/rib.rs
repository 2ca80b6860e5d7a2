//! The routing information bases of RFC 4271 3.2 and the decision process
//! of 9.1: an Adj-RIB-In per peer, the Loc-RIB with every candidate per
//! prefix, and the export toward one peer. Pure data structures; the
//! caller feeds UPDATEs and session events and acts on the returned
//! changes (kernel routes, UPDATEs to send).

use std::cmp::Reverse;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::attr_store::{AttrId, AttrStore};
use crate::policy::{Import, Rejection};
use crate::prefix_map::{PrefixMap, WARM};
use crate::route::{PathAttributes, PeerInfo, Route, Source, Update};

// Prefixes come from configured peers, not strangers, and a million of them
// must hash fast.
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

/// LOCAL_PREF assumed when a route has none (the usual default).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// A change to one source's route for a prefix; `None` is a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibChange {
    pub prefix: IpNet,
    pub attributes: Option<Arc<PathAttributes>>,
}

/// What one peer announced, after import policy: its per-session state.
/// The accepted routes themselves are this peer's candidates in the
/// Loc-RIB, not a second table: after import policy they are exactly what
/// the decision needs from the peer, and one map means one lookup per
/// prefix instead of two, and the memory of one (BIRD has no separate
/// import table either).
#[derive(Debug, Clone)]
pub struct AdjRibIn {
    peer: PeerInfo,
    /// Prefixes with a candidate of this peer in the Loc-RIB.
    accepted: usize,
    /// Prefixes the peer announces that import policy refused.
    filtered: Set<IpNet>,
    rejected: u64,
    last_rejection: Option<(IpNet, Rejection)>,
}

impl AdjRibIn {
    pub fn new(peer: PeerInfo) -> AdjRibIn {
        AdjRibIn {
            peer,
            accepted: 0,
            filtered: Set::default(),
            rejected: 0,
            last_rejection: None,
        }
    }

    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    pub fn source(&self) -> Source {
        Source::Peer(self.peer)
    }

    /// Accepted prefixes: what the max-prefix limit counts.
    pub fn len(&self) -> usize {
        self.accepted
    }

    pub fn is_empty(&self) -> bool {
        self.accepted == 0
    }

    /// Prefixes the peer announces, accepted or not: what it sent minus
    /// what it withdrew.
    pub fn received(&self) -> usize {
        self.accepted + self.filtered.len()
    }

    /// The peer's accepted route for the prefix, held in `loc`.
    pub fn get(&self, loc: &LocRib, prefix: &IpNet) -> Option<Route> {
        loc.route_of(&self.source(), prefix)
    }

    /// Every accepted route of the peer, held in `loc`.
    pub fn routes<'a>(&self, loc: &'a LocRib) -> impl Iterator<Item = Route> + 'a {
        loc.routes_of(self.source())
    }

    /// Announcements refused by import policy since the session started.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    pub fn last_rejection(&self) -> Option<(IpNet, Rejection)> {
        self.last_rejection
    }

    /// Applies one UPDATE through `import` to this peer's candidates in
    /// `loc`, and returns the prefixes whose best route changed, in the
    /// order of the UPDATE (withdrawals first). A refused announcement
    /// withdraws what the peer had sent before for that prefix: the peer
    /// replaced it. `loc` must be the Loc-RIB this peer's routes went to
    /// since `new` (`LocRib::remove_peer` ends the session's routes). The
    /// changes name routes in `loc` until its next `sweep`.
    pub fn apply(
        &mut self,
        update: &Update,
        import: &Import<'_>,
        loc: &mut LocRib,
    ) -> Vec<BestChange> {
        let source = loc.source_id(self.source());
        let mut moved = Vec::with_capacity(update.withdrawn.len() + update.announced.len());
        // RFC 4271 9: a prefix both withdrawn and announced is announced.
        let reannounced: Option<Set<IpNet>> =
            if update.withdrawn.is_empty() || update.announced.is_empty() {
                None
            } else {
                Some(update.announced.iter().copied().collect())
            };
        for (i, prefix) in update.withdrawn.iter().enumerate() {
            if i % WARM == 0 {
                loc.prefixes.warm(&update.withdrawn[i..]);
            }
            if reannounced.as_ref().is_some_and(|set| set.contains(prefix)) {
                continue;
            }
            self.unfilter(prefix);
            self.set(loc, *prefix, source, None, &mut moved);
        }
        if update.announced.is_empty() {
            return moved;
        }
        // `None`: announced without attributes, which the decoder should
        // not let through; dropping the prefixes is the safe reading.
        let attributes = match &update.attributes {
            Some(attributes) => import
                .attributes(attributes)
                .map(|attributes| loc.attrs.intern(attributes))
                .map_err(Some),
            None => Err(None),
        };
        for (i, prefix) in update.announced.iter().enumerate() {
            if i % WARM == 0 {
                loc.prefixes.warm(&update.announced[i..]);
            }
            let verdict = match &attributes {
                Ok(attributes) => import.prefix(prefix).map(|()| *attributes).map_err(Some),
                Err(rejection) => Err(*rejection),
            };
            match verdict {
                Ok(attributes) => {
                    self.unfilter(prefix);
                    self.set(loc, *prefix, source, Some(attributes), &mut moved);
                }
                Err(rejection) => {
                    if let Some(rejection) = rejection {
                        self.rejected += 1;
                        self.last_rejection = Some((*prefix, rejection));
                    }
                    self.filtered.insert(*prefix);
                    self.set(loc, *prefix, source, None, &mut moved);
                }
            }
        }
        moved
    }

    /// Sets this peer's candidate for the prefix and keeps the count.
    fn set(
        &mut self,
        loc: &mut LocRib,
        prefix: IpNet,
        source: u32,
        attributes: Option<AttrId>,
        moved: &mut Vec<BestChange>,
    ) {
        let had = loc.set(prefix, source, attributes, moved);
        match (had, attributes.is_some()) {
            (false, true) => self.accepted += 1,
            (true, false) => self.accepted = self.accepted.saturating_sub(1),
            _ => {}
        }
    }

    /// Forgets a refusal (the prefix was withdrawn or accepted), without
    /// hashing when nothing was ever refused, the usual case.
    fn unfilter(&mut self, prefix: &IpNet) {
        if !self.filtered.is_empty() {
            self.filtered.remove(prefix);
        }
    }
}

/// The best route for a prefix moved: `old` was installed and announced,
/// `new` replaces it (`None`: no route left). The routes are named, not
/// copied: read them through the Loc-RIB that returned the change
/// (`LocRib::route`, `attributes`, `source`), before its next `sweep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestChange {
    pub prefix: IpNet,
    pub old: Option<RouteRef>,
    pub new: Option<RouteRef>,
}

/// The decision step at which a candidate was eliminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A locally originated route exists.
    Learned,
    LocalPreference,
    AsPathLength,
    Origin,
    Med,
    Ibgp,
    RouterId,
    PeerAddress,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Learned => "learned (local route preferred)",
            Reason::LocalPreference => "lower local preference",
            Reason::AsPathLength => "longer AS path",
            Reason::Origin => "higher origin",
            Reason::Med => "higher MED (same neighbour AS)",
            Reason::Ibgp => "iBGP (eBGP preferred)",
            Reason::RouterId => "higher router id",
            Reason::PeerAddress => "higher peer address",
        })
    }
}

/// A candidate's place in the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    Best,
    Lost(Reason),
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Standing::Best => f.write_str("best"),
            Standing::Lost(reason) => reason.fmt(f),
        }
    }
}

/// Which of a prefix's candidates a route replaces: one per peer address,
/// one local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKey {
    Local,
    Peer(IpAddr),
}

impl SourceKey {
    fn of(source: &Source) -> SourceKey {
        match source {
            Source::Local => SourceKey::Local,
            Source::Peer(peer) => SourceKey::Peer(peer.address),
        }
    }
}

/// A route in the Loc-RIB without its prefix (the map's key): its
/// attribute set and its source, each by index. 8 bytes where a `Route`
/// takes 56, and no reference count to touch when it is stored, moved or
/// handed out in a `BestChange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRef {
    attributes: AttrId,
    /// Into `LocRib::sources`.
    source: u32,
}

/// A prefix's candidates, never empty, the best first. Most prefixes have
/// one, kept inline to spare an allocation each.
#[derive(Debug, Clone)]
enum Candidates {
    One(RouteRef),
    Many(Vec<RouteRef>),
}

enum Outcome {
    Unchanged,
    Changed,
    Emptied,
}

impl Candidates {
    fn as_slice(&self) -> &[RouteRef] {
        match self {
            Candidates::One(candidate) => std::slice::from_ref(candidate),
            Candidates::Many(candidates) => candidates,
        }
    }

    fn best(&self) -> RouteRef {
        self.as_slice()[0]
    }

    /// Sets the candidate of `source` (`None`: removes it), keeps the
    /// sets' counts of holders and re-runs the decision. Also tells
    /// whether `source` had a candidate before. Interned ids are equal
    /// exactly when the sets are.
    fn set(
        &mut self,
        source: u32,
        attributes: Option<AttrId>,
        sources: &[Source],
        attrs: &mut AttrStore,
    ) -> (Outcome, bool) {
        let mut new = |attributes: AttrId| {
            attrs.hold(attributes);
            RouteRef { attributes, source }
        };
        let (outcome, had) = match self {
            Candidates::One(current) => match (current.source == source, attributes) {
                (true, None) => {
                    let gone = current.attributes;
                    attrs.release(gone);
                    return (Outcome::Emptied, true);
                }
                (true, Some(a)) if current.attributes == a => (Outcome::Unchanged, true),
                (true, Some(a)) => {
                    let gone = current.attributes;
                    *current = new(a);
                    attrs.release(gone);
                    (Outcome::Changed, true)
                }
                (false, None) => (Outcome::Unchanged, false),
                (false, Some(a)) => {
                    *self = Candidates::Many(vec![*current, new(a)]);
                    (Outcome::Changed, false)
                }
            },
            Candidates::Many(candidates) => {
                let at = candidates.iter().position(|c| c.source == source);
                let outcome = match (at, attributes) {
                    (None, None) => Outcome::Unchanged,
                    (None, Some(a)) => {
                        candidates.push(new(a));
                        Outcome::Changed
                    }
                    (Some(i), Some(a)) if candidates[i].attributes == a => Outcome::Unchanged,
                    (Some(i), Some(a)) => {
                        let gone = candidates[i].attributes;
                        candidates[i] = new(a);
                        attrs.release(gone);
                        Outcome::Changed
                    }
                    (Some(i), None) => {
                        let gone = candidates.swap_remove(i);
                        attrs.release(gone.attributes);
                        if let [last] = candidates.as_slice() {
                            *self = Candidates::One(*last);
                        }
                        Outcome::Changed
                    }
                };
                (outcome, at.is_some())
            }
        };
        if let (Outcome::Changed, Candidates::Many(candidates)) = (&outcome, self) {
            reselect(candidates, sources, attrs);
        }
        (outcome, had)
    }
}

/// Moves the best candidate first.
fn reselect(candidates: &mut [RouteRef], sources: &[Source], attrs: &AttrStore) {
    let (best, ()) = with_standings(candidates, sources, attrs, |_| ());
    candidates.swap(0, best);
}

/// Runs the decision with scratch space on the stack for the usual few
/// candidates; `then` sees each candidate's elimination step.
fn with_standings<T>(
    candidates: &[RouteRef],
    sources: &[Source],
    attrs: &AttrStore,
    then: impl FnOnce(&[Option<Reason>]) -> T,
) -> (usize, T) {
    const INLINE: usize = 16;
    let decision = Decision { sources, attrs };
    if candidates.len() <= INLINE {
        let mut lost = [None; INLINE];
        let lost = &mut lost[..candidates.len()];
        let best = decision.decide(candidates, lost);
        (best, then(lost))
    } else {
        let mut lost = vec![None; candidates.len()];
        let best = decision.decide(candidates, &mut lost);
        (best, then(&lost))
    }
}

/// What the decision reads a candidate's source and attributes from.
struct Decision<'a> {
    sources: &'a [Source],
    attrs: &'a AttrStore,
}

impl Decision<'_> {
    fn peer(&self, c: &RouteRef) -> Option<PeerInfo> {
        match &self.sources[c.source as usize] {
            Source::Local => None,
            Source::Peer(peer) => Some(*peer),
        }
    }

    fn attributes(&self, c: &RouteRef) -> &PathAttributes {
        self.attrs.get(c.attributes)
    }

    /// RFC 4271 9.1.2.2 as successive eliminations over the whole set,
    /// never pairwise: MED is only comparable within a neighbour AS, so a
    /// pairwise order is not transitive and the winner would depend on
    /// arrival order. Returns the index of the one survivor and marks in
    /// `lost` the step that removed each other candidate.
    fn decide(&self, candidates: &[RouteRef], lost: &mut [Option<Reason>]) -> usize {
        let c = candidates;
        let peer = |c: &RouteRef| self.peer(c);
        let attributes = |c: &RouteRef| self.attributes(c);
        eliminate(c, lost, Reason::Learned, |c| peer(c).is_some());
        eliminate(c, lost, Reason::LocalPreference, |c| {
            Reverse(attributes(c).local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
        });
        eliminate(c, lost, Reason::AsPathLength, |c| {
            attributes(c).as_path.len()
        });
        eliminate(c, lost, Reason::Origin, |c| attributes(c).origin);
        self.eliminate_med(c, lost);
        eliminate(c, lost, Reason::Ibgp, |c| !peer(c).is_some_and(|p| p.ebgp));
        // Local routes have no peer, but by now at most one is left.
        eliminate(c, lost, Reason::RouterId, |c| peer(c).map(|p| p.router_id));
        eliminate(c, lost, Reason::PeerAddress, |c| peer(c).map(|p| p.address));
        lost.iter().position(Option::is_none).unwrap_or(0)
    }

    /// Step (c): within each neighbour AS, only the lowest MED survives
    /// (a missing MED counts as 0).
    fn eliminate_med(&self, candidates: &[RouteRef], lost: &mut [Option<Reason>]) {
        if lost.iter().filter(|l| l.is_none()).count() <= 1 {
            return;
        }
        let med = |c: &RouteRef| self.attributes(c).med.unwrap_or(0);
        let neighbour = |c: &RouteRef| self.attributes(c).as_path.first();
        // Those marked in this step were in at its start.
        let alive = |lost: &[Option<Reason>], i: usize| matches!(lost[i], None | Some(Reason::Med));
        for (i, candidate) in candidates.iter().enumerate() {
            if lost[i].is_some() {
                continue;
            }
            let beaten = candidates.iter().enumerate().any(|(j, other)| {
                alive(lost, j)
                    && neighbour(other) == neighbour(candidate)
                    && med(other) < med(candidate)
            });
            if beaten {
                lost[i] = Some(Reason::Med);
            }
        }
    }
}

/// One step: of the candidates still in, those whose key is above the
/// lowest are out for `reason`.
fn eliminate<K: Ord>(
    candidates: &[RouteRef],
    lost: &mut [Option<Reason>],
    reason: Reason,
    key: impl Fn(&RouteRef) -> K,
) {
    let mut alive = candidates
        .iter()
        .zip(lost.iter())
        .filter(|(_, lost)| lost.is_none())
        .map(|(candidate, _)| key(candidate));
    let (Some(first), Some(second)) = (alive.next(), alive.next()) else {
        return;
    };
    let keep = alive.fold(first.min(second), K::min);
    for (candidate, lost) in candidates.iter().zip(lost.iter_mut()) {
        if lost.is_none() && key(candidate) > keep {
            *lost = Some(reason);
        }
    }
}

/// Every candidate route per prefix, from all peers' Adj-RIBs-In and local
/// origination, and the best of each.
#[derive(Debug, Clone, Default)]
pub struct LocRib {
    prefixes: PrefixMap<Candidates>,
    /// Indexed by `RouteRef::source`. A peer keeps its slot across
    /// sessions; its latest `PeerInfo` applies to all its routes.
    sources: Vec<Source>,
    /// Every candidate's attributes, interned across peers.
    attrs: AttrStore,
}

impl LocRib {
    pub fn new() -> LocRib {
        LocRib::default()
    }

    /// Applies one source's changes as they are, without import policy or
    /// an `AdjRibIn` (whose count of a peer's routes this would bypass: a
    /// peer's UPDATEs go through `AdjRibIn::apply`), and returns the
    /// prefixes whose best route changed. A prefix listed twice in
    /// `changes` is listed twice in the result, in order. A peer is known
    /// by its address: its `PeerInfo` must not change while it has routes
    /// here (`remove_peer` at the end of each session).
    pub fn update(&mut self, source: Source, changes: &[RibChange]) -> Vec<BestChange> {
        let id = self.source_id(source);
        let mut moved = Vec::with_capacity(changes.len());
        for change in changes {
            let attributes = change
                .attributes
                .as_ref()
                .map(|a| self.attrs.intern(Arc::clone(a)));
            self.set(change.prefix, id, attributes, &mut moved);
        }
        moved
    }

    /// Originates (or re-originates) a prefix from this speaker.
    pub fn originate(
        &mut self,
        prefix: IpNet,
        attributes: Arc<PathAttributes>,
    ) -> Option<BestChange> {
        let id = self.source_id(Source::Local);
        let attributes = self.attrs.intern(attributes);
        let mut moved = Vec::with_capacity(1);
        self.set(prefix, id, Some(attributes), &mut moved);
        moved.pop()
    }

    pub fn withdraw_local(&mut self, prefix: IpNet) -> Option<BestChange> {
        let id = self.source_id(Source::Local);
        let mut moved = Vec::with_capacity(1);
        self.set(prefix, id, None, &mut moved);
        moved.pop()
    }

    /// Drops every route learned from the peer at `address` (its session
    /// went down).
    pub fn remove_peer(&mut self, address: IpAddr) -> Vec<BestChange> {
        let key = SourceKey::Peer(address);
        let Some(id) = self.sources.iter().position(|s| SourceKey::of(s) == key) else {
            return Vec::new();
        };
        let LocRib {
            prefixes,
            sources,
            attrs,
        } = self;
        let id = id as u32;
        let mut moved = Vec::new();
        prefixes.retain(|prefix, candidates| {
            let old = candidates.best();
            match candidates.set(id, None, sources, attrs).0 {
                Outcome::Unchanged => true,
                Outcome::Emptied => {
                    moved.push(BestChange {
                        prefix,
                        old: Some(old),
                        new: None,
                    });
                    false
                }
                Outcome::Changed => {
                    let new = candidates.best();
                    if old != new {
                        moved.push(BestChange {
                            prefix,
                            old: Some(old),
                            new: Some(new),
                        });
                    }
                    true
                }
            }
        });
        moved
    }

    /// Frees the attribute sets no route holds any more (when they are
    /// many). The routes named in `BestChange`s returned before are no
    /// longer readable afterwards: call it once they are handled.
    pub fn sweep(&mut self) {
        self.attrs.sweep();
    }

    /// Distinct attribute sets stored, including those a `sweep` would
    /// free.
    pub fn attribute_sets(&self) -> usize {
        self.attrs.len()
    }

    /// A route this Loc-RIB named for the prefix, as a value.
    pub fn route(&self, prefix: IpNet, route: RouteRef) -> Route {
        Route {
            prefix,
            attributes: Arc::clone(self.attributes(route)),
            source: self.source(route),
        }
    }

    /// The attributes of a route this Loc-RIB named.
    pub fn attributes(&self, route: RouteRef) -> &Arc<PathAttributes> {
        self.attrs.get(route.attributes)
    }

    /// Where a route this Loc-RIB named came from.
    pub fn source(&self, route: RouteRef) -> Source {
        self.sources[route.source as usize]
    }

    pub fn best(&self, prefix: &IpNet) -> Option<Route> {
        let candidates = self.prefixes.get(prefix)?;
        Some(self.route(*prefix, candidates.best()))
    }

    /// Every candidate for the prefix, the best first, each with the step
    /// of the decision that eliminated it.
    pub fn candidates(&self, prefix: &IpNet) -> Vec<(Route, Standing)> {
        let Some(candidates) = self.prefixes.get(prefix) else {
            return Vec::new();
        };
        let candidates = candidates.as_slice();
        let (_, standings) = with_standings(candidates, &self.sources, &self.attrs, |lost| {
            lost.iter()
                .map(|lost| lost.map_or(Standing::Best, Standing::Lost))
                .collect::<Vec<_>>()
        });
        candidates
            .iter()
            .map(|c| self.route(*prefix, *c))
            .zip(standings)
            .collect()
    }

    /// The best route of every prefix, in no particular order.
    pub fn best_routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.prefixes
            .iter()
            .map(|(prefix, candidates)| self.route(prefix, candidates.best()))
    }

    /// Prefixes with at least one candidate.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    fn source_id(&mut self, source: Source) -> u32 {
        let key = SourceKey::of(&source);
        match self.sources.iter().position(|s| SourceKey::of(s) == key) {
            Some(id) => {
                self.sources[id] = source;
                id as u32
            }
            None => {
                self.sources.push(source);
                (self.sources.len() - 1) as u32
            }
        }
    }

    /// Sets `source`'s candidate for the prefix (`None`: removes it),
    /// pushes the move of the best if there is one, and tells whether
    /// `source` had a candidate before.
    fn set(
        &mut self,
        prefix: IpNet,
        source: u32,
        attributes: Option<AttrId>,
        moved: &mut Vec<BestChange>,
    ) -> bool {
        let LocRib {
            prefixes,
            sources,
            attrs,
        } = self;
        let found = prefixes.find(&prefix);
        let Some((slot, candidates)) = found.and_then(|slot| Some((slot, prefixes.at_mut(slot)?)))
        else {
            if let Some(attributes) = attributes {
                attrs.hold(attributes);
                let new = RouteRef { attributes, source };
                moved.push(BestChange {
                    prefix,
                    old: None,
                    new: Some(new),
                });
                prefixes.push(prefix, Candidates::One(new));
            }
            return false;
        };
        let old = candidates.best();
        let (outcome, had) = candidates.set(source, attributes, sources, attrs);
        let new = match outcome {
            Outcome::Unchanged => return had,
            Outcome::Changed => Some(candidates.best()),
            Outcome::Emptied => {
                prefixes.remove_at(slot);
                None
            }
        };
        if new != Some(old) {
            moved.push(BestChange {
                prefix,
                old: Some(old),
                new,
            });
        }
        had
    }

    /// The route `source` gave for the prefix.
    pub(crate) fn route_of(&self, source: &Source, prefix: &IpNet) -> Option<Route> {
        let id = self.find_source(source)?;
        let candidates = self.prefixes.get(prefix)?;
        let candidate = candidates.as_slice().iter().find(|c| c.source == id)?;
        Some(self.route(*prefix, *candidate))
    }

    /// Every route `source` gave, in no particular order.
    pub(crate) fn routes_of(&self, source: Source) -> impl Iterator<Item = Route> + '_ {
        let id = self.find_source(&source);
        self.prefixes
            .iter()
            .filter_map(move |(prefix, candidates)| {
                let id = id?;
                let candidate = candidates.as_slice().iter().find(|c| c.source == id)?;
                Some(self.route(prefix, *candidate))
            })
    }

    fn find_source(&self, source: &Source) -> Option<u32> {
        let key = SourceKey::of(source);
        let id = self.sources.iter().position(|s| SourceKey::of(s) == key)?;
        Some(id as u32)
    }
}

#[cfg(test)]
#[path = "rib_tests.rs"]
mod tests;
