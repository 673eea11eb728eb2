//! Who may hold a syslog TCP connection, and for how long. A connection
//! costs a task and a read buffer, and the listeners serve every tenant:
//! a stranger holding connections open must not keep anyone else out.
//!
//! - **Per source:** at most `MAX_PER_SOURCE` connections from one address
//!   (an IPv6 /64 counts as one: a host gets a whole /64), over every
//!   listener. Senders behind one NAT, or Docker's port forwarding, share
//!   one source.
//! - **Per listener:** the shared (keyed) address and each tenant's own
//!   address have permits of their own, so a crowd on one leaves the others
//!   alone.
//! - **Unproven connections:** on the shared address a connection is
//!   unproven until a message of it names a tenant with a valid key. At most
//!   `MAX_UNPROVEN` are held; past it the oldest unproven one is closed to
//!   make room (a sender that sends at once proves itself within a round
//!   trip), and one that sends nothing valid within `FIRST_MESSAGE` is closed.
//! - **Per tenant:** a proven connection counts against its tenant, at most
//!   `MAX_PER_TENANT` on the shared address.
//! - **Idle:** any connection that sends nothing for `IDLE` is closed;
//!   senders reconnect.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Connections one address may hold, over every listener: more than a
/// busy relay needs, few enough that one machine cannot crowd a listener.
pub const MAX_PER_SOURCE: usize = 64;
/// Connections the shared address holds before its oldest unproven one
/// goes.
pub const MAX_UNPROVEN: usize = 256;
/// Proven connections one tenant may hold on the shared address.
pub const MAX_PER_TENANT: usize = 256;
/// How long a new connection on the shared address has to send a message
/// with a valid key.
pub const FIRST_MESSAGE: Duration = Duration::from_secs(10);
/// How long any connection may stay silent.
pub const IDLE: Duration = Duration::from_secs(300);

/// The bookkeeping of every listener of a process.
#[derive(Default)]
pub struct Connections {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    per_source: HashMap<IpAddr, usize>,
    per_tenant: HashMap<String, usize>,
    /// Unproven connections, oldest first: their id and how to close them.
    unproven: VecDeque<(u64, Arc<Notify>)>,
    next: u64,
}

/// Why a connection is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Source,
    Tenant,
}

/// One connection's place; dropping it gives the place back.
pub struct Slot {
    connections: Arc<Connections>,
    id: u64,
    source: IpAddr,
    tenant: Option<String>,
    /// Notified when the connection must close to make room.
    pub evicted: Arc<Notify>,
}

impl Connections {
    /// A place for a connection from `source`; `unproven` ones (the shared
    /// address) may be closed later to make room for newer ones.
    pub fn open(self: &Arc<Self>, source: IpAddr, unproven: bool) -> Result<Slot, Refused> {
        let source = source_of(source);
        let mut st = self.state.lock();
        let n = st.per_source.entry(source).or_default();
        if *n >= MAX_PER_SOURCE {
            return Err(Refused::Source);
        }
        *n += 1;
        st.next += 1;
        let id = st.next;
        let evicted = Arc::new(Notify::new());
        if unproven {
            if st.unproven.len() >= MAX_UNPROVEN
                && let Some((_, oldest)) = st.unproven.pop_front()
            {
                // `notify_one` keeps a permit: the connection sees it even
                // if it is not waiting right now.
                oldest.notify_one();
            }
            st.unproven.push_back((id, evicted.clone()));
        }
        Ok(Slot {
            connections: self.clone(),
            id,
            source,
            tenant: None,
            evicted,
        })
    }
}

/// What counts as one source: an IPv4 address, or an IPv6 /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

impl Slot {
    /// Whether a message of the connection has proven it.
    pub fn proven(&self) -> bool {
        self.tenant.is_some()
    }

    /// A message of the connection named `tenant` with a valid key (or the
    /// connection is on the tenant's own address): it stays, counted
    /// against the tenant.
    pub fn prove(&mut self, tenant: &str) -> Result<(), Refused> {
        if self.tenant.is_some() {
            return Ok(());
        }
        let mut st = self.connections.state.lock();
        let n = st.per_tenant.entry(tenant.to_string()).or_default();
        if *n >= MAX_PER_TENANT {
            return Err(Refused::Tenant);
        }
        *n += 1;
        st.unproven.retain(|(id, _)| *id != self.id);
        self.tenant = Some(tenant.to_string());
        // An eviction told before it was proven (a permit `notify_one`
        // kept) no longer applies.
        self.evicted = Arc::new(Notify::new());
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.connections.state.lock();
        if let Some(n) = st.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                st.per_source.remove(&self.source);
            }
        }
        if let Some(t) = &self.tenant
            && let Some(n) = st.per_tenant.get_mut(t)
        {
            *n -= 1;
            if *n == 0 {
                st.per_tenant.remove(t);
            }
        }
        st.unproven.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn one_source_holds_its_share_and_gives_it_back() {
        let c = Arc::new(Connections::default());
        let mut slots: Vec<Slot> = (0..MAX_PER_SOURCE)
            .map(|_| c.open(ip("10.0.0.1"), false).expect("room"))
            .collect();
        assert_eq!(c.open(ip("10.0.0.1"), false).err(), Some(Refused::Source));
        assert!(
            c.open(ip("10.0.0.2"), false).is_ok(),
            "another source has its own share"
        );
        slots.pop();
        assert!(
            c.open(ip("10.0.0.1"), false).is_ok(),
            "a closed connection gives its place back"
        );
    }

    #[tokio::test]
    async fn the_oldest_unproven_connection_makes_room() {
        let c = Arc::new(Connections::default());
        let mut slots = Vec::new();
        for i in 0..MAX_UNPROVEN {
            let source = ip(&format!("10.0.{}.{}", i / 200, i % 200 + 1));
            slots.push(c.open(source, true).expect("room"));
        }
        let newcomer = c.open(ip("192.168.0.1"), true).expect("room");
        tokio::time::timeout(Duration::from_secs(1), slots[0].evicted.notified())
            .await
            .expect("the oldest unproven connection was told to close");
        // A proven one is never evicted (and no longer counts as unproven).
        slots[2].prove("acme").expect("prove");
        let _room = c.open(ip("192.168.0.2"), true).expect("room");
        let _another = c.open(ip("192.168.0.3"), true).expect("room");
        tokio::time::timeout(Duration::from_secs(1), slots[1].evicted.notified())
            .await
            .expect("then the next oldest");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slots[2].evicted.notified())
                .await
                .is_err(),
            "a proven connection was evicted"
        );
        let _third = c.open(ip("192.168.0.4"), true).expect("room");
        tokio::time::timeout(Duration::from_secs(1), slots[3].evicted.notified())
            .await
            .expect("skipping the proven one");
        drop(newcomer);
    }

    #[tokio::test]
    async fn a_connection_proven_after_its_eviction_stays() {
        let c = Arc::new(Connections::default());
        let mut slots = Vec::new();
        for i in 0..MAX_UNPROVEN {
            slots.push(
                c.open(ip(&format!("10.2.{}.{}", i / 200, i % 200 + 1)), true)
                    .expect("room"),
            );
        }
        // The oldest is told to close while it is busy (its first message
        // held by its tenant's rate), then proves itself.
        let _newcomer = c.open(ip("192.168.1.1"), true).expect("room");
        slots[0].prove("acme").expect("prove");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slots[0].evicted.notified())
                .await
                .is_err(),
            "a proven connection was closed by an eviction told before"
        );
    }

    #[test]
    fn an_ipv6_host_is_one_source() {
        let c = Arc::new(Connections::default());
        let _slots: Vec<Slot> = (0..MAX_PER_SOURCE)
            .map(|i| c.open(ip(&format!("2001:db8:1:2::{:x}", i + 1)), false).expect("room"))
            .collect();
        assert_eq!(
            c.open(ip("2001:db8:1:2:ffff::1"), false).err(),
            Some(Refused::Source),
            "another address of the same /64"
        );
        assert!(c.open(ip("2001:db8:1:3::1"), false).is_ok(), "another /64");
        assert_eq!(source_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn a_tenant_holds_its_share() {
        let c = Arc::new(Connections::default());
        let mut slots = Vec::new();
        for i in 0..MAX_PER_TENANT {
            let mut s = c
                .open(ip(&format!("10.1.{}.{}", i / 200, i % 200 + 1)), true)
                .expect("room");
            s.prove("acme").expect("share");
            slots.push(s);
        }
        let mut s = c.open(ip("10.9.9.9"), true).expect("room");
        assert_eq!(s.prove("acme"), Err(Refused::Tenant));
        assert!(s.prove("beta").is_ok(), "another tenant has its own share");
    }
}
