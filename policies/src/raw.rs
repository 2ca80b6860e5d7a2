//! A policy file as written: serde structs that mirror the TOML.
//!
//! Syntax serde can check (addresses, enums) is typed here so the TOML
//! parser reports it with a line and column; everything else is checked
//! in [`crate::load`] with the spans kept by [`Spanned`].

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;
use toml::Spanned;

use crate::model::Action;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub management: Option<Spanned<RawManagement>>,
    #[serde(default)]
    pub zone: Vec<Spanned<RawZone>>,
    #[serde(default)]
    pub policy: Vec<Spanned<RawPairPolicy>>,
    #[serde(default)]
    pub address_set: Vec<Spanned<RawAddressSet>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub port_forward: Vec<Spanned<RawPortForward>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManagement {
    pub zone: Spanned<String>,
    pub ssh_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZone {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub vlan: Option<Spanned<RawVlan>>,
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub ipv4: Vec<Spanned<Ipv4Net>>,
    #[serde(default)]
    pub ipv6: Vec<Spanned<Ipv6Net>>,
    pub input: Option<Action>,
    pub forward: Option<Action>,
    #[serde(default)]
    pub masquerade: bool,
    #[serde(default)]
    pub intercept_dns: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVlan {
    pub parent: String,
    pub id: u16,
}

/// A string or a list of strings: `to = "wan"` and `to = ["wan", "iot"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPairPolicy {
    pub from: Spanned<OneOrMany>,
    pub to: Spanned<OneOrMany>,
    pub action: Action,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAddressSet {
    pub name: Spanned<String>,
    pub addresses: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Spanned<String>,
    pub from: Spanned<OneOrMany>,
    pub to: Spanned<OneOrMany>,
    pub service: Option<Spanned<OneOrMany>>,
    pub source: Option<Spanned<OneOrMany>>,
    pub destination: Option<Spanned<OneOrMany>>,
    pub action: Action,
    pub log: Option<Spanned<String>>,
    pub limit: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortForward {
    pub name: Spanned<String>,
    pub from: Spanned<String>,
    pub protocol: Spanned<String>,
    pub port: Spanned<u16>,
    pub to: Spanned<String>,
    pub to_port: Option<Spanned<u16>>,
}
