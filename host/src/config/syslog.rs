//! The syslog listeners' addresses (`--syslog-listen`, `--syslog-tenant`):
//! whose messages arrive at each, and who may send there.

use std::net::SocketAddr;

use super::{ConfigError, bad};
use crate::model::Slug;

/// A syslog address and whose messages arrive there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogBinding {
    pub addr: SocketAddr,
    /// `None`: each message names its tenant with a key.
    pub tenant: Option<Slug>,
    /// On a tenant's own address, who may send there.
    pub senders: Senders,
}

impl SyslogBinding {
    /// Whether `peer` may send here at all.
    pub fn admits(&self, peer: std::net::IpAddr) -> bool {
        match &self.senders {
            Senders::From(nets) => nets.iter().any(|n| n.contains(peer)),
            Senders::Anyone | Senders::Keyed => true,
        }
    }
}

/// Who may send to a tenant's own syslog address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Senders {
    /// Anyone who reaches it (the address is the credential).
    Anyone,
    /// Each message must carry a key of the tenant, as on the shared
    /// address (`;key`).
    Keyed,
    /// Only these networks (`;from=10.0.0.0/8|192.168.1.7`).
    From(Vec<Cidr>),
}

/// An IP network: an address and how many of its leading bits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or one address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse().ok()?, None),
        };
        let max = if matches!(addr, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 peer on an IPv6 socket comes mapped.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        let bits = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128),
        };
        let ((net, len), (peer, peer_len)) = (bits(self.addr), bits(ip));
        if len != peer_len {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == peer & mask
    }
}

pub(super) fn syslog_bindings(
    keyed: Option<SocketAddr>,
    tenants: &[String],
) -> Result<Vec<SyslogBinding>, ConfigError> {
    const SETTING: &str = "--syslog-tenant (LOGGERHUB_SYSLOG_TENANTS)";
    let mut out: Vec<SyslogBinding> = keyed
        .map(|addr| SyslogBinding {
            addr,
            tenant: None,
            senders: Senders::Keyed,
        })
        .into_iter()
        .collect();
    for item in tenants.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let (item_addr, options) = item.split_once(';').unwrap_or((item, ""));
        let (slug, addr) = item_addr
            .split_once('=')
            .ok_or_else(|| bad(SETTING, format!("{item:?}: expected SLUG=ADDR[;key|;from=CIDR|CIDR…]")))?;
        let senders = match options.trim() {
            "" => Senders::Anyone,
            "key" => Senders::Keyed,
            o => match o.strip_prefix("from=") {
                Some(list) => Senders::From(
                    list.split('|')
                        .map(|c| {
                            Cidr::parse(c.trim())
                                .ok_or_else(|| bad(SETTING, format!("{item:?}: {c:?} is not an address or network")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                None => return Err(bad(SETTING, format!("{item:?}: after `;`, `key` or `from=CIDR|CIDR…`"))),
            },
        };
        let slug = Slug::parse(slug.trim()).map_err(|e| bad(SETTING, format!("{item:?}: {e}")))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|e| bad(SETTING, format!("{item:?}: {e}")))?;
        if out.iter().any(|b| b.addr == addr && addr.port() != 0) {
            return Err(bad(SETTING, format!("{addr} is used twice")));
        }
        out.push(SyslogBinding {
            addr,
            tenant: Some(slug),
            senders,
        });
    }
    Ok(out)
}
