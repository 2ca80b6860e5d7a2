//! The RFC 4271 session state machine (section 8), sans I/O: the driver
//! feeds it events (connection up or down, a framed message, a timer that
//! fired) and carries out the actions it returns (connect, send, close,
//! arm a timer). Time never passes inside: timers are inputs.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{Notification, code, subcode};
use crate::route::{Asn, Update};
use crate::wire::{self, Family, Message, Open};

/// The six states of RFC 4271 8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
}

/// The session's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_asn: Asn,
    pub peer_asn: Asn,
    pub router_id: Ipv4Addr,
    /// Offered hold time in seconds; 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    pub connect_retry: Duration,
    /// Wait for the peer to connect instead of connecting.
    pub passive: bool,
    pub families: Vec<Family>,
}

/// Hold time while waiting for the peer's OPEN (RFC 4271 8: "large").
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// What was agreed when the session came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_router_id: Ipv4Addr,
    pub peer_asn: Asn,
    pub hold_time: u16,
    pub four_octet: bool,
    pub families: Vec<Family>,
    pub route_refresh: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// Start the session (ManualStart or AutomaticStart).
    Start,
    /// Stop it, telling the peer why (RFC 8203), e.g. on deconfiguration.
    Stop(Notification),
    /// A TCP connection to or from the peer is up.
    Connected,
    /// The connection failed or closed.
    ConnectionLost,
    /// One framed message (see [`wire::frame`]).
    Message(&'a [u8]),
    /// The byte stream did not frame ([`wire::frame`]'s error).
    BadHeader(Notification),
    Timer(Timer),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Connect,
    Send(Vec<u8>),
    Close,
    StartTimer(Timer, Duration),
    StopTimer(Timer),
    /// The session reached Established.
    Up(Negotiated),
    /// Routes the peer announced or withdrew.
    Routes(Update),
    /// The peer sent a malformed UPDATE whose routes were withdrawn
    /// (RFC 7606 treat-as-withdraw); the reason, for logs.
    TreatedAsWithdraw(String),
    /// The peer asks for our routes again (RFC 2918).
    RefreshRequested(Family),
    /// The session left Established, or an attempt failed: why.
    Down(String),
}

/// One peer's session.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    negotiated: Option<Negotiated>,
    /// The last reason the session went down, for status.
    last_error: Option<String>,
    /// Stopped by the operator (or a max-prefix limit): no automatic
    /// restart, no incoming connection accepted.
    stopped: bool,
}

impl Session {
    pub fn new(config: SessionConfig) -> Session {
        Session {
            config,
            state: State::Idle,
            negotiated: None,
            last_error: None,
            stopped: true,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn handle(&mut self, event: Event<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        let retry = matches!(event, Event::Timer(Timer::ConnectRetry));
        match (self.state, event) {
            (State::Idle, Event::Start) | (State::Idle, Event::Timer(Timer::ConnectRetry))
                if !retry || !self.stopped =>
            {
                self.stopped = false;
                actions.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                if self.config.passive {
                    self.state = State::Active;
                } else {
                    self.state = State::Connect;
                    actions.push(Action::Connect);
                }
            }
            (_, Event::Stop(notification)) => {
                if self.state >= State::OpenSent {
                    self.send_notification(&notification, &mut actions);
                }
                self.down(format!("stopped: {notification}"), false, &mut actions);
                self.stopped = true;
                // A stop is manual: no automatic restart.
                actions.retain(|a| !matches!(a, Action::StartTimer(Timer::ConnectRetry, _)));
                actions.push(Action::StopTimer(Timer::ConnectRetry));
            }
            // Waiting to retry, the peer calls first: take its connection
            // rather than refuse it and collide with it later.
            (State::Idle, Event::Connected) if !self.stopped => {
                self.state = State::Active;
                return self.handle(Event::Connected);
            }
            (State::Idle, _) => {}
            (_, Event::Start) => {}
            (State::Connect | State::Active, Event::Connected) => {
                actions.push(Action::StopTimer(Timer::ConnectRetry));
                match wire::encode_open(
                    self.config.local_asn,
                    self.config.hold_time,
                    self.config.router_id,
                    &self.config.families,
                ) {
                    Ok(open) => actions.push(Action::Send(open)),
                    Err(e) => {
                        self.down(format!("cannot build our OPEN: {e}"), true, &mut actions);
                        return actions;
                    }
                }
                actions.push(Action::StartTimer(Timer::Hold, OPEN_HOLD));
                self.state = State::OpenSent;
            }
            (State::Connect | State::Active, Event::ConnectionLost) => {
                // Try again when the connect-retry timer fires.
                self.state = if self.config.passive {
                    State::Active
                } else {
                    State::Connect
                };
            }
            (State::Connect, Event::Timer(Timer::ConnectRetry)) => {
                actions.push(Action::Close);
                actions.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                actions.push(Action::Connect);
            }
            (State::Active, Event::Timer(Timer::ConnectRetry)) => {
                actions.push(Action::StartTimer(
                    Timer::ConnectRetry,
                    self.config.connect_retry,
                ));
                if !self.config.passive {
                    self.state = State::Connect;
                    actions.push(Action::Connect);
                }
            }
            (_, Event::ConnectionLost) => {
                self.down("connection closed by the peer".into(), true, &mut actions);
            }
            (_, Event::BadHeader(notification)) => {
                self.fail(notification, &mut actions);
            }
            (_, Event::Timer(Timer::Hold)) => {
                self.fail(Notification::new(code::HOLD_TIMER_EXPIRED, 0), &mut actions);
            }
            (State::OpenConfirm | State::Established, Event::Timer(Timer::Keepalive)) => {
                actions.push(Action::Send(wire::encode_keepalive()));
                self.arm_keepalive(&mut actions);
            }
            (_, Event::Timer(_)) => {}
            (State::OpenSent, Event::Message(bytes)) => self.open_sent(bytes, &mut actions),
            (State::OpenConfirm, Event::Message(bytes)) => match self.decode(bytes) {
                Ok(Message::Keepalive) => {
                    self.state = State::Established;
                    self.arm_hold(&mut actions);
                    if let Some(negotiated) = self.negotiated.clone() {
                        self.last_error = None;
                        actions.push(Action::Up(negotiated));
                    }
                }
                Ok(Message::Notification(n)) => self.received_notification(&n, &mut actions),
                Ok(_) => self.fail(Notification::new(code::FSM, 0), &mut actions),
                Err(n) => self.fail(n, &mut actions),
            },
            (State::Established, Event::Message(bytes)) => self.established(bytes, &mut actions),
            (State::Connect | State::Active, Event::Message(_)) => {
                self.fail(Notification::new(code::FSM, 0), &mut actions);
            }
            (_, Event::Connected) => {
                // A second connection is the driver's collision to resolve.
            }
        }
        actions
    }

    fn open_sent(&mut self, bytes: &[u8], actions: &mut Vec<Action>) {
        let open = match self.decode(bytes) {
            Ok(Message::Open(open)) => open,
            Ok(Message::Notification(n)) => return self.received_notification(&n, actions),
            Ok(_) => return self.fail(Notification::new(code::FSM, 0), actions),
            Err(n) => return self.fail(n, actions),
        };
        match self.accept_open(&open) {
            Ok(negotiated) => {
                self.negotiated = Some(negotiated);
                actions.push(Action::Send(wire::encode_keepalive()));
                self.state = State::OpenConfirm;
                self.arm_hold(actions);
                self.arm_keepalive(actions);
            }
            Err(n) => self.fail(n, actions),
        }
    }

    /// RFC 4271 6.2 and RFC 6793: what makes an OPEN unacceptable.
    fn accept_open(&self, open: &Open) -> Result<Negotiated, Notification> {
        if open.version != 4 {
            return Err(
                Notification::new(code::OPEN, subcode::UNSUPPORTED_VERSION).with_data(vec![0, 4])
            );
        }
        if open.asn() != self.config.peer_asn {
            return Err(Notification::new(code::OPEN, subcode::BAD_PEER_AS)
                .with_data(open.asn16.to_be_bytes().to_vec()));
        }
        let ibgp = self.config.peer_asn == self.config.local_asn;
        if open.router_id.is_unspecified() || (ibgp && open.router_id == self.config.router_id) {
            return Err(Notification::new(code::OPEN, subcode::BAD_BGP_IDENTIFIER));
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(Notification::new(
                code::OPEN,
                subcode::UNACCEPTABLE_HOLD_TIME,
            ));
        }
        let families: Vec<Family> = open
            .families()
            .into_iter()
            .filter(|f| self.config.families.contains(f))
            .collect();
        Ok(Negotiated {
            peer_router_id: open.router_id,
            peer_asn: open.asn(),
            hold_time: open.hold_time.min(self.config.hold_time),
            four_octet: open.capabilities.four_octet_as.is_some(),
            families,
            route_refresh: open.capabilities.route_refresh,
        })
    }

    fn established(&mut self, bytes: &[u8], actions: &mut Vec<Action>) {
        match self.decode(bytes) {
            Ok(Message::Update(received)) => {
                self.arm_hold(actions);
                if let Some(reason) = received.treated_as_withdraw {
                    actions.push(Action::TreatedAsWithdraw(reason));
                }
                actions.extend(received.updates.into_iter().map(Action::Routes));
            }
            Ok(Message::Keepalive) => self.arm_hold(actions),
            Ok(Message::RouteRefresh { afi, safi: 1 }) => {
                self.arm_hold(actions);
                let family = match afi {
                    1 => Some(Family::Ipv4),
                    2 => Some(Family::Ipv6),
                    _ => None,
                };
                if let Some(family) = family {
                    actions.push(Action::RefreshRequested(family));
                }
            }
            // Other address families' refreshes are not ours to answer.
            Ok(Message::RouteRefresh { .. }) => self.arm_hold(actions),
            Ok(Message::Notification(n)) => self.received_notification(&n, actions),
            Ok(Message::Open(_)) => self.fail(Notification::new(code::FSM, 0), actions),
            Err(n) => self.fail(n, actions),
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<Message, Notification> {
        let four_octet = self.negotiated.as_ref().is_none_or(|n| n.four_octet);
        wire::decode(bytes, four_octet)
    }

    /// The hold timer restarts with every message; hold time 0 disables it.
    fn arm_hold(&self, actions: &mut Vec<Action>) {
        match self.negotiated.as_ref().map(|n| n.hold_time) {
            Some(0) => actions.push(Action::StopTimer(Timer::Hold)),
            Some(hold) => actions.push(Action::StartTimer(
                Timer::Hold,
                Duration::from_secs(u64::from(hold)),
            )),
            None => {}
        }
    }

    fn arm_keepalive(&self, actions: &mut Vec<Action>) {
        if let Some(hold) = self.negotiated.as_ref().map(|n| n.hold_time)
            && hold > 0
        {
            actions.push(Action::StartTimer(
                Timer::Keepalive,
                Duration::from_secs(u64::from(hold / 3).max(1)),
            ));
        }
    }

    fn send_notification(&self, notification: &Notification, actions: &mut Vec<Action>) {
        if let Ok(bytes) = wire::encode_notification(notification) {
            actions.push(Action::Send(bytes));
        }
    }

    /// A protocol error of the peer's: tell it, and go down.
    fn fail(&mut self, notification: Notification, actions: &mut Vec<Action>) {
        self.send_notification(&notification, actions);
        self.down(format!("sent {notification}"), true, actions);
    }

    fn received_notification(&mut self, notification: &Notification, actions: &mut Vec<Action>) {
        self.down(format!("received {notification}"), true, actions);
    }

    /// Closes the connection and returns to Idle; with `restart`, the
    /// connect-retry timer brings the session back (automatic start).
    fn down(&mut self, reason: String, restart: bool, actions: &mut Vec<Action>) {
        actions.push(Action::Close);
        actions.push(Action::StopTimer(Timer::Hold));
        actions.push(Action::StopTimer(Timer::Keepalive));
        if restart {
            actions.push(Action::StartTimer(
                Timer::ConnectRetry,
                self.config.connect_retry,
            ));
        }
        self.state = State::Idle;
        self.negotiated = None;
        self.last_error = Some(reason.clone());
        actions.push(Action::Down(reason));
    }
}

/// RFC 4271 6.8: of two connections between the same speakers, the one
/// opened by the speaker with the higher BGP identifier survives. Returns
/// whether our own outgoing connection is the one to keep.
pub fn keep_outgoing(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> bool {
    u32::from(local_id) > u32::from(remote_id)
}

#[cfg(test)]
#[path = "fsm_tests.rs"]
mod tests;
