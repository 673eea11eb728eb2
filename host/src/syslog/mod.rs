//! The syslog listeners: TCP (RFC 6587 framing) and UDP on each configured
//! address. On the shared address (`--syslog-listen`) each message names
//! its tenant with a key in its structured data; on a tenant's own address
//! (`--syslog-tenant SLUG=ADDR`) every message is that tenant's. Messages
//! go through the same gate and queue as any other ingest
//! (`Ingest::gate`, `Ingest::ingest_checked`), in batches.
//!
//! Syslog has no answers: a TCP sender over its plan's rate is held (the
//! connection is not read until the rate allows, which is TCP's
//! backpressure); over UDP the message is dropped. Either way, what is
//! refused is counted in `loggerhub_syslog_dropped_total{reason}`.
//!
//! A tenant's own address takes messages from anyone who reaches it, or
//! only keyed ones (`;key`), or only from listed networks (`;from=…`).
//! Who may hold a TCP connection, and for how long, is `connections`.
//!
//! **Invariant:** a message is stored only under the tenant its key or its
//! address names, and the key itself is never stored.

mod connections;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};

use crate::config::{Senders, SyslogBinding};
use crate::cpu;
use crate::ingest::rate::Rate;
use crate::ingest::syslog::{self, Framer};
use crate::ingest::{CheckedBatch, Converted, Daily, Ingest, IngestError, Sender};
use crate::model::window::TimeWindow;
use crate::model::{Slug, now_ns};
use crate::stores::TenantState;
use crate::telemetry::Metrics;
use crate::tenants::{Scope, Tenants};
use connections::{Connections, Slot};

/// TCP connections the shared address serves at once: each holds a task
/// and a read buffer.
const MAX_CONNECTIONS: usize = 1024;
/// TCP connections each tenant's own address serves at once.
const MAX_PER_ADDRESS: usize = 256;
/// A UDP batch is sent once it holds this many messages or is this old.
const UDP_BATCH: usize = 500;
const UDP_LINGER: Duration = Duration::from_millis(20);
/// Longest a held TCP sender waits between two tries.
const MAX_HOLD: Duration = Duration::from_secs(5);
/// How long a tenant's plan and state, looked up for its own address, are
/// reused.
const TENANT_TTL: Duration = Duration::from_secs(5);

/// Bound sockets, ready to serve.
pub struct Listeners {
    bound: Vec<(SyslogBinding, TcpListener, UdpSocket)>,
}

impl Listeners {
    /// Binds every address (TCP and UDP on each): a setting that cannot
    /// work fails the start.
    pub async fn bind(bindings: &[SyslogBinding]) -> std::io::Result<Listeners> {
        let mut bound = Vec::new();
        for b in bindings {
            let tcp = TcpListener::bind(b.addr).await?;
            // Port 0: UDP on the port TCP got.
            let udp = UdpSocket::bind(tcp.local_addr()?).await?;
            bound.push((b.clone(), tcp, udp));
        }
        Ok(Listeners { bound })
    }

    /// Where each binding listens (port 0 resolved).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.bound.iter().filter_map(|(_, t, _)| t.local_addr().ok()).collect()
    }

    pub async fn serve(self, service: Arc<Syslog>, shutdown: watch::Receiver<bool>) {
        let connections = Arc::new(Connections::default());
        let mut tasks = tokio::task::JoinSet::new();
        for (binding, tcp, udp) in self.bound {
            // Each address its own permits: a crowd on one leaves the
            // others alone.
            let permits = Arc::new(Semaphore::new(if binding.tenant.is_some() {
                MAX_PER_ADDRESS
            } else {
                MAX_CONNECTIONS
            }));
            let binding = Arc::new(binding);
            tasks.spawn(
                service
                    .clone()
                    .accept(tcp, binding.clone(), permits, connections.clone(), shutdown.clone()),
            );
            tasks.spawn(cpu::sampled(
                cpu::Stage::Ingest,
                service.clone().datagrams(udp, binding, shutdown.clone()),
            ));
        }
        while tasks.join_next().await.is_some() {}
    }
}

pub struct Syslog {
    tenants: Arc<Tenants>,
    ingest: Arc<Ingest>,
    metrics: Arc<Metrics>,
    /// Tenants of their own addresses: plan, state, when looked up.
    bound_tenants: Mutex<HashMap<String, (String, TenantState, Instant)>>,
}

/// Why a message was not taken (the metric's label).
#[derive(Debug, Clone, Copy)]
enum Dropped {
    Malformed,
    NoKey,
    BadKey,
    Suspended,
    Refused,
    Limited,
    /// From an address the tenant's own address does not take.
    Sender,
}

impl Dropped {
    fn as_str(self) -> &'static str {
        match self {
            Dropped::Malformed => "malformed",
            Dropped::NoKey => "no_key",
            Dropped::BadKey => "bad_key",
            Dropped::Suspended => "suspended",
            Dropped::Refused => "refused",
            Dropped::Limited => "limited",
            Dropped::Sender => "sender",
        }
    }
}

impl Syslog {
    pub fn new(tenants: Arc<Tenants>, ingest: Arc<Ingest>, metrics: Arc<Metrics>) -> Syslog {
        Syslog {
            tenants,
            ingest,
            metrics,
            bound_tenants: Mutex::new(HashMap::new()),
        }
    }

    async fn accept(
        self: Arc<Self>,
        listener: TcpListener,
        binding: Arc<SyslogBinding>,
        permits: Arc<Semaphore>,
        connections: Arc<Connections>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let Ok((stream, peer)) = accepted else { continue };
            if !binding.admits(peer.ip()) {
                tracing::debug!(%peer, "syslog connection refused: not a listed sender");
                self.dropped(Dropped::Sender, 1);
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "syslog connection refused: too many open on this address");
                continue;
            };
            // On the shared address, and on a tenant's keyed one, a
            // connection proves itself with its first keyed message.
            let keyed = binding.tenant.is_none() || binding.senders == Senders::Keyed;
            let mut slot = match connections.open(peer.ip(), keyed) {
                Ok(slot) => slot,
                Err(why) => {
                    tracing::debug!(%peer, ?why, "syslog connection refused");
                    continue;
                }
            };
            if let (Some(tenant), false) = (&binding.tenant, keyed)
                && slot.prove(tenant.as_str()).is_err()
            {
                continue;
            }
            let this = self.clone();
            let binding = binding.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                cpu::sampled(
                    cpu::Stage::Ingest,
                    this.connection(stream, &binding, &mut slot, shutdown),
                )
                .await;
                drop(permit);
            });
        }
    }

    async fn connection(
        &self,
        mut stream: TcpStream,
        binding: &SyslogBinding,
        slot: &mut Slot,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 64 * 1024];
        let opened = tokio::time::Instant::now();
        let mut last = opened;
        loop {
            // Unproven, until its first message's deadline; then idle.
            let deadline = if slot.proven() {
                last + connections::IDLE
            } else {
                opened + connections::FIRST_MESSAGE
            };
            let evicted = slot.evicted.clone();
            let unproven = !slot.proven();
            let n = tokio::select! {
                n = stream.read(&mut buf) => n,
                () = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(proven = slot.proven(), "syslog connection closed: silent too long");
                    return;
                }
                () = async { if unproven { evicted.notified().await } else { std::future::pending().await } } => {
                    tracing::debug!("syslog connection closed: unproven, to make room");
                    return;
                }
                _ = shutdown.changed() => return,
            };
            let n = match n {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            last = tokio::time::Instant::now();
            let frames = match framer.push(&buf[..n]) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog connection closed: its framing is broken");
                    self.dropped(Dropped::Malformed, 1);
                    return;
                }
            };
            let groups = self.group(&frames, binding).await;
            // Proven by a valid key of a tenant that may send, before its
            // messages wait out the tenant's rate: an eviction meanwhile
            // does not close it.
            if !slot.proven()
                && let Some((sender, _)) = groups.iter().find(|(s, c)| !s.suspended && c.count > 0)
                && slot.prove(&sender.tenant).is_err()
            {
                tracing::warn!(
                    tenant = sender.tenant,
                    "syslog connection closed: the tenant holds its share of connections"
                );
                return;
            }
            // Held here, unread, while the tenant is over its rate.
            self.queue_groups(groups, true).await;
        }
    }

    async fn datagrams(
        self: Arc<Self>,
        socket: UdpSocket,
        binding: Arc<SyslogBinding>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; syslog::MAX_FRAME];
        let mut batch: Vec<String> = Vec::new();
        let mut since = Instant::now();
        loop {
            let wait = if batch.is_empty() {
                Duration::from_secs(3600)
            } else {
                UDP_LINGER.saturating_sub(since.elapsed())
            };
            tokio::select! {
                got = socket.recv_from(&mut buf) => {
                    if let Ok((_, peer)) = got && !binding.admits(peer.ip()) {
                        self.dropped(Dropped::Sender, 1);
                        continue;
                    }
                    if let Ok((n, _)) = got {
                        if batch.is_empty() {
                            since = Instant::now();
                        }
                        // One message per datagram, or several a line each.
                        let text = String::from_utf8_lossy(&buf[..n]);
                        batch.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
                    }
                    if batch.len() < UDP_BATCH {
                        continue;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            let frames = std::mem::take(&mut batch);
            let groups = self.group(&frames, &binding).await;
            self.queue_groups(groups, false).await;
        }
    }

    /// Parses `frames` and groups their messages by tenant, each converted
    /// for the JSON payload.
    async fn group(&self, frames: &[String], binding: &SyslogBinding) -> Vec<(Sender, Converted)> {
        let now = now_ns();
        let bytes: usize = frames.iter().map(String::len).sum();
        let mut groups: HashMap<String, (Sender, Converted)> = HashMap::new();
        for frame in frames {
            let message = match syslog::parse(frame, now) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(error = %e, "syslog message dropped");
                    self.dropped(Dropped::Malformed, 1);
                    continue;
                }
            };
            let sender = match (&binding.tenant, &binding.senders) {
                // A tenant's keyed address takes only its own keys.
                (Some(slug), Senders::Keyed) => self.keyed_sender(message.key()).await.and_then(|s| {
                    if s.tenant == slug.as_str() {
                        Ok(s)
                    } else {
                        Err(Dropped::BadKey)
                    }
                }),
                (Some(slug), _) => self.bound_sender(slug).await,
                (None, _) => self.keyed_sender(message.key()).await,
            };
            let sender = match sender {
                Ok(s) => s,
                Err(why) => {
                    self.dropped(why, 1);
                    continue;
                }
            };
            let tenant = sender.tenant.clone();
            let window = TimeWindow::at(now, sender.retention);
            let (_, converted) = groups
                .entry(tenant.clone())
                .or_insert_with(|| (sender, Converted::within(window, bytes)));
            converted.push(&message.document(), &tenant);
        }
        groups.into_values().collect()
    }

    /// Queues each group; `hold` waits out a rate limit (TCP) instead of
    /// dropping (UDP).
    async fn queue_groups(&self, groups: Vec<(Sender, Converted)>, hold: bool) {
        for (sender, mut converted) in groups {
            if converted.rejected > 0 {
                self.dropped(Dropped::Refused, converted.rejected);
            }
            if converted.count > 0 {
                self.queue(&sender, &mut converted, hold).await;
            }
        }
    }

    async fn queue(&self, sender: &Sender, converted: &mut Converted, hold: bool) {
        for (body, count) in converted.entries() {
            self.queue_entry(sender, body, count, hold).await;
        }
    }

    /// Queues one entry of a group's records, holding (TCP) or dropping
    /// (UDP) while the tenant is over its rate.
    async fn queue_entry(&self, sender: &Sender, body: bytes::Bytes, count: usize, hold: bool) {
        loop {
            let result = match self.ingest.gate(sender, Some(body.len())).await {
                Ok(admission) => {
                    self.ingest
                        .ingest_checked(
                            &admission,
                            CheckedBatch {
                                batch_id: ulid::Ulid::new(),
                                service: None,
                                body: body.clone(),
                                count,
                                has_ids: false,
                            },
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            let wait = match result {
                Ok(_) => return,
                Err(IngestError::Suspended(_)) => {
                    self.dropped(Dropped::Suspended, count);
                    return;
                }
                Err(IngestError::RateLimited { retry_after_secs, .. }) => Duration::from_secs(retry_after_secs.into()),
                Err(IngestError::Queue(_)) => Duration::from_secs(1),
                Err(e) => {
                    tracing::debug!(tenant = sender.tenant, error = %e, "syslog batch dropped");
                    self.dropped(Dropped::Limited, count);
                    return;
                }
            };
            if !hold {
                self.dropped(Dropped::Limited, count);
                return;
            }
            tokio::time::sleep(wait.min(MAX_HOLD)).await;
        }
    }

    async fn keyed_sender(&self, key: Option<&str>) -> Result<Sender, Dropped> {
        let key = key.ok_or(Dropped::NoKey)?;
        let principal = self
            .tenants
            .authenticate(key)
            .await
            .ok()
            .flatten()
            .filter(|p| p.can(Scope::Ingest))
            .ok_or(Dropped::BadKey)?;
        Ok(self.sender(principal.tenant, &principal.plan, principal.state))
    }

    async fn bound_sender(&self, slug: &Slug) -> Result<Sender, Dropped> {
        let cached = self
            .bound_tenants
            .lock()
            .get(slug.as_str())
            .filter(|(_, _, at)| at.elapsed() < TENANT_TTL)
            .map(|(plan, state, _)| (plan.clone(), *state));
        let (plan, state) = match cached {
            Some(c) => c,
            None => {
                let t = self.tenants.get(slug.as_str()).await.map_err(|_| Dropped::BadKey)?;
                self.bound_tenants
                    .lock()
                    .insert(slug.as_str().to_string(), (t.plan.clone(), t.state, Instant::now()));
                (t.plan, t.state)
            }
        };
        Ok(self.sender(slug.as_str().to_string(), &plan, state))
    }

    /// The gate's view of a tenant (`Ingest::gate` refuses a suspended one).
    fn sender(&self, tenant: String, plan: &str, state: TenantState) -> Sender {
        let plan = self.tenants.plan(plan);
        Sender {
            tenant,
            suspended: state != TenantState::Active,
            rate: Rate {
                logs_per_second: plan.logs_per_second,
                bytes_per_second: plan.bytes_per_second,
                burst_seconds: plan.burst_seconds,
            },
            daily: Daily {
                logs: plan.daily_logs,
                bytes: plan.daily_bytes,
            },
            retention: plan.retention(),
        }
    }

    fn dropped(&self, why: Dropped, n: usize) {
        self.metrics.syslog_dropped(why.as_str(), n);
    }
}
