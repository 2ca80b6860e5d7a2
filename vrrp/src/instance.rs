//! One virtual router (RFC 5798 section 6): its settings, its state, and
//! the handlers for each input. Time comes in as an argument and timers go
//! out as deadlines ([`Instance::next_timeout`]); nothing here sleeps,
//! sends or touches an interface. The driver does what the returned
//! [`Action`]s say.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::error::VrrpError;
use crate::packet::{Advertisement, MAX_INTERVAL_CENTIS};

/// The priority of the router that owns the virtual addresses.
pub const OWNER_PRIORITY: u8 = 255;

/// What an instance is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Virtual router id, 1 to 255.
    pub vrid: u8,
    /// 1 to 254, or 255 for the owner of the addresses.
    pub priority: u8,
    /// Advertisement interval in centiseconds, 1 to 4095.
    pub advert_interval: u16,
    /// Whether a higher-priority backup takes over from a lower-priority
    /// master (RFC 5798 Preempt_Mode).
    pub preempt: bool,
    /// How long after start (or after a fault clears) a backup waits
    /// before it preempts, as keepalived's `preempt_delay`.
    pub preempt_delay: Duration,
    /// The virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
    /// When the second round of gratuitous ARPs / unsolicited neighbour
    /// advertisements goes out after becoming master (keepalived's
    /// `garp_master_delay`); zero sends only the first.
    pub announce_again_after: Duration,
}

impl Settings {
    /// Checks the ranges RFC 5798 gives.
    pub fn validate(&self) -> Result<(), VrrpError> {
        if self.vrid == 0 {
            return Err(VrrpError::Settings("vrid must be 1 to 255".into()));
        }
        if self.priority == 0 {
            return Err(VrrpError::Settings(
                "priority must be 1 to 254, or 255 for the address owner".into(),
            ));
        }
        if self.advert_interval == 0 || self.advert_interval > MAX_INTERVAL_CENTIS {
            return Err(VrrpError::Settings(
                "advertisement interval must be 10 ms to 40.95 s".into(),
            ));
        }
        let Some(first) = self.addresses.first() else {
            return Err(VrrpError::Settings("no virtual address".into()));
        };
        if self
            .addresses
            .iter()
            .any(|a| a.is_ipv4() != first.is_ipv4())
        {
            return Err(VrrpError::Settings(
                "virtual addresses of both families in one instance".into(),
            ));
        }
        if self.addresses.len() > 255 {
            return Err(VrrpError::Settings(
                "more than 255 virtual addresses".into(),
            ));
        }
        Ok(())
    }
}

/// The states of RFC 5798 6.4, plus Fault: the appliance's own health
/// checks failed, so it holds no address and does not compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transition happened, for status, logs and notify hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Started as the owner of the addresses (priority 255).
    Owner,
    /// Started and waits to hear from a master.
    Startup,
    /// No advertisement for the master down interval.
    MasterDown,
    /// The master said it is leaving (priority 0).
    MasterLeft,
    /// An advertisement from a router that wins: higher priority, or equal
    /// priority and a higher address.
    Preempted { by: IpAddr, priority: u8 },
    /// The appliance's own checks failed.
    Fault(String),
    /// The checks pass again.
    Recovered,
    /// The instance is being stopped.
    Shutdown,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Owner => f.write_str("owner of the addresses"),
            Reason::Startup => f.write_str("started"),
            Reason::MasterDown => f.write_str("no advertisement within the master down interval"),
            Reason::MasterLeft => f.write_str("the master left (priority 0)"),
            Reason::Preempted { by, priority } => {
                write!(f, "advertisement from {by} with priority {priority}")
            }
            Reason::Fault(why) => write!(f, "fault: {why}"),
            Reason::Recovered => f.write_str("checks pass again"),
            Reason::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: leaving) and the
    /// configured interval and addresses.
    Advertise { priority: u8 },
    /// Put the virtual addresses on the interface.
    AddAddresses,
    /// Take them off.
    RemoveAddresses,
    /// Gratuitous ARP (IPv4) or unsolicited neighbour advertisements
    /// (IPv6) for every virtual address.
    Announce,
    /// The state changed.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// What status reports about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// The priority advertised now (configured, lowered by failed checks).
    pub priority: u8,
    pub configured_priority: u8,
    /// The master's address: ours in Master, the sender of the last
    /// advertisement accepted in Backup.
    pub master: Option<IpAddr>,
    pub master_priority: Option<u8>,
    /// The master's advertisement interval in centiseconds, as learned.
    pub master_advert_interval: u16,
    pub transitions: u64,
    pub last_reason: Option<Reason>,
    /// When the current state began.
    pub since: Instant,
}

/// One virtual router.
#[derive(Debug, Clone)]
pub struct Instance {
    settings: Settings,
    /// This router's primary address on the interface: the source of its
    /// advertisements and its tie-breaker.
    local: IpAddr,
    state: State,
    priority: u8,
    master_advert_interval: u16,
    advert_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    announce_timer: Option<Instant>,
    /// A backup does not preempt before this.
    preempt_after: Instant,
    master: Option<(IpAddr, u8)>,
    /// The master's last word was priority 0.
    master_left: bool,
    transitions: u64,
    last_reason: Option<Reason>,
    since: Instant,
}

fn centis(value: u64) -> Duration {
    Duration::from_millis(value * 10)
}

impl Instance {
    /// A new instance in Initialize; [`Instance::start`] sets it going.
    pub fn new(settings: Settings, local: IpAddr, now: Instant) -> Result<Instance, VrrpError> {
        settings.validate()?;
        if local.is_ipv4() != settings.addresses[0].is_ipv4() {
            return Err(VrrpError::Settings(
                "the interface address and the virtual addresses are of different families".into(),
            ));
        }
        Ok(Instance {
            priority: settings.priority,
            master_advert_interval: settings.advert_interval,
            settings,
            local,
            state: State::Initialize,
            advert_timer: None,
            master_down_timer: None,
            announce_timer: None,
            preempt_after: now,
            master: None,
            master_left: false,
            transitions: 0,
            last_reason: None,
            since: now,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_address(&self) -> IpAddr {
        self.local
    }

    /// The advertisement this router sends with `priority`.
    pub fn advertisement(&self, priority: u8) -> Advertisement {
        Advertisement {
            vrid: self.settings.vrid,
            priority,
            max_advert_interval: self.settings.advert_interval,
            addresses: self.settings.addresses.clone(),
        }
    }

    pub fn status(&self) -> Status {
        let master = match self.state {
            State::Master => Some((self.local, self.priority)),
            State::Backup => self.master,
            State::Initialize | State::Fault => None,
        };
        Status {
            state: self.state,
            priority: self.priority,
            configured_priority: self.settings.priority,
            master: master.map(|(address, _)| address),
            master_priority: master.map(|(_, priority)| priority),
            master_advert_interval: self.master_advert_interval,
            transitions: self.transitions,
            last_reason: self.last_reason.clone(),
            since: self.since,
        }
    }

    /// The earliest deadline the driver must call [`Instance::timeout`] at.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.advert_timer,
            self.master_down_timer,
            self.announce_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// RFC 5798 6.4.1: the Startup event.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state != State::Initialize {
            return actions;
        }
        self.preempt_after = now + self.settings.preempt_delay;
        if self.priority == OWNER_PRIORITY {
            self.become_master(now, Reason::Owner, &mut actions);
        } else {
            self.become_backup(
                now,
                self.settings.advert_interval,
                Reason::Startup,
                &mut actions,
            );
        }
        actions
    }

    /// An advertisement for this VRID arrived from `source` (its TTL and
    /// checksum already checked).
    pub fn receive(&mut self, now: Instant, source: IpAddr, adv: &Advertisement) -> Vec<Action> {
        let mut actions = Vec::new();
        if adv.vrid != self.settings.vrid || source == self.local {
            return actions;
        }
        match self.state {
            State::Backup => self.receive_in_backup(now, source, adv),
            State::Master => self.receive_in_master(now, source, adv, &mut actions),
            State::Initialize | State::Fault => {}
        }
        actions
    }

    /// RFC 5798 6.4.2, the advertisement part.
    fn receive_in_backup(&mut self, now: Instant, source: IpAddr, adv: &Advertisement) {
        if adv.priority == 0 {
            // The master is leaving: take over after the skew only, so
            // the highest-priority backup goes first.
            self.master = None;
            self.master_left = true;
            self.master_down_timer = Some(now + self.skew_time());
            return;
        }
        let holding_back = now < self.preempt_after;
        if !self.settings.preempt || adv.priority >= self.priority || holding_back {
            self.master = Some((source, adv.priority));
            self.master_left = false;
            self.master_advert_interval = adv.max_advert_interval.max(1);
            self.master_down_timer = Some(now + self.master_down_interval());
        }
        // Otherwise a lower-priority master is ignored, and the master
        // down timer runs out: that is how a backup preempts.
    }

    /// RFC 5798 6.4.3, the advertisement part.
    fn receive_in_master(
        &mut self,
        now: Instant,
        source: IpAddr,
        adv: &Advertisement,
        actions: &mut Vec<Action>,
    ) {
        if adv.priority == 0 {
            // Another master is leaving: make sure everyone hears from us.
            self.advertise(now, actions);
            return;
        }
        let wins =
            adv.priority > self.priority || (adv.priority == self.priority && source > self.local);
        if wins {
            actions.push(Action::RemoveAddresses);
            let reason = Reason::Preempted {
                by: source,
                priority: adv.priority,
            };
            self.master = Some((source, adv.priority));
            self.become_backup(now, adv.max_advert_interval.max(1), reason, actions);
        }
    }

    /// Handles every timer due at `now`.
    pub fn timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let due = |timer: Option<Instant>| timer.is_some_and(|t| t <= now);
        if due(self.master_down_timer) && self.state == State::Backup {
            self.master_down_timer = None;
            let reason = if self.master_left {
                Reason::MasterLeft
            } else {
                Reason::MasterDown
            };
            self.become_master(now, reason, &mut actions);
        }
        if due(self.advert_timer) && self.state == State::Master {
            self.advertise(now, &mut actions);
        }
        if due(self.announce_timer) {
            self.announce_timer = None;
            if self.state == State::Master {
                actions.push(Action::Announce);
            }
        }
        actions
    }

    /// The appliance's health set the priority to `priority` (the
    /// configured one when everything passes). A master tells the others
    /// at once, so a better backup can take over without waiting.
    pub fn set_priority(&mut self, now: Instant, priority: u8) -> Vec<Action> {
        let mut actions = Vec::new();
        let priority = priority.max(1);
        if priority == self.priority {
            return actions;
        }
        self.priority = priority;
        if self.state == State::Master {
            self.advertise(now, &mut actions);
        }
        actions
    }

    /// The appliance's own checks failed: give up the addresses and stop
    /// competing until [`Instance::recover`].
    pub fn fault(&mut self, now: Instant, why: String) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Fault {
            return actions;
        }
        self.leave(&mut actions);
        self.transition(now, State::Fault, Reason::Fault(why), &mut actions);
        actions
    }

    /// The checks pass again: start over, as after boot.
    pub fn recover(&mut self, now: Instant) -> Vec<Action> {
        if self.state != State::Fault {
            return Vec::new();
        }
        let mut actions = Vec::new();
        self.transition(now, State::Initialize, Reason::Recovered, &mut actions);
        actions.extend(self.start(now));
        actions
    }

    /// RFC 5798 6.4.3 Shutdown: a master says it is leaving (priority 0)
    /// so a backup takes over after its skew, not the whole interval.
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Initialize {
            return actions;
        }
        self.leave(&mut actions);
        self.transition(now, State::Initialize, Reason::Shutdown, &mut actions);
        actions
    }

    fn leave(&mut self, actions: &mut Vec<Action>) {
        if self.state == State::Master {
            actions.push(Action::Advertise { priority: 0 });
            actions.push(Action::RemoveAddresses);
        }
        self.advert_timer = None;
        self.master_down_timer = None;
        self.announce_timer = None;
        self.master = None;
        self.master_left = false;
    }

    fn become_master(&mut self, now: Instant, reason: Reason, actions: &mut Vec<Action>) {
        self.master_down_timer = None;
        self.master = None;
        self.master_left = false;
        actions.push(Action::AddAddresses);
        self.advertise(now, actions);
        actions.push(Action::Announce);
        if !self.settings.announce_again_after.is_zero() {
            self.announce_timer = Some(now + self.settings.announce_again_after);
        }
        self.transition(now, State::Master, reason, actions);
    }

    fn become_backup(
        &mut self,
        now: Instant,
        master_interval: u16,
        reason: Reason,
        actions: &mut Vec<Action>,
    ) {
        self.advert_timer = None;
        self.announce_timer = None;
        self.master_advert_interval = master_interval;
        self.master_down_timer = Some(now + self.master_down_interval());
        self.transition(now, State::Backup, reason, actions);
    }

    fn advertise(&mut self, now: Instant, actions: &mut Vec<Action>) {
        actions.push(Action::Advertise {
            priority: self.priority,
        });
        self.advert_timer = Some(now + centis(u64::from(self.settings.advert_interval)));
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.since = now;
        self.transitions += 1;
        self.last_reason = Some(reason.clone());
        actions.push(Action::Transition { from, to, reason });
    }

    /// RFC 5798 6.1: ((256 - priority) * Master_Adver_Interval) / 256.
    fn skew_time(&self) -> Duration {
        let interval = u64::from(self.master_advert_interval);
        centis((256 - u64::from(self.priority)) * interval / 256)
    }

    /// RFC 5798 6.1: 3 * Master_Adver_Interval + Skew_Time.
    fn master_down_interval(&self) -> Duration {
        centis(3 * u64::from(self.master_advert_interval)) + self.skew_time()
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
