//! One turn of one tenant (`Processor::turn`): its state and plan first,
//! then its pipeline over the entries the budget allows, the stores, and
//! the ack; on a backend failure, its entries handed back after a backoff.

use std::time::{Duration, Instant};

use super::instances::TenantInstances;
use super::scheduler::Turn;
use super::tenant_run::TenantRun;
use super::{PipelineError, Processor, TurnDone, backoff, tokens};
use crate::cpu;
use crate::queue::Delivery;
use crate::stores::TenantState;
use crate::tenants::plans::Plan;
use crate::usage::Usage;

/// A turn stops starting entries once it has run this many budgets (a
/// turn planned for more, by a tenant alone, is cut here too): its entry
/// estimate was wrong, or no one should wait longer behind it.
const TURN_OVERRUN: u32 = 2;

impl Processor {
    /// One turn of one tenant: run its pipeline over the entries the budget
    /// allows, write the stores, then ack them and release the rest; on a
    /// backend failure, hand them all back after a backoff.
    pub(super) async fn turn(
        &self,
        turn: Turn,
        group: Vec<Delivery>,
        mut instances: Option<TenantInstances>,
    ) -> TurnDone {
        let tenant = turn.tenant.clone();
        let started = Instant::now();
        let known = self.deleting.tenant(self.accounts.as_ref(), &tenant).await;
        let mut plan = None;
        let mut day_used = false;
        if let Some(t) = &known {
            let (p, used) = self.apply_plan(&tenant, &t.plan).await;
            plan = Some(p);
            day_used = used;
        }
        let retention = plan.as_ref().map(Plan::retention);
        // What its plugins stored used up the day: its entries wait, not
        // lost, until midnight UTC or a larger plan.
        if day_used {
            self.metrics.tenant_refused(&tenant, "stored_daily");
            self.hold(
                &tenant,
                Duration::from_secs(60.min(u64::from(crate::usage::seconds_to_midnight()))),
            );
            let _ = self.queue.release(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: 0,
                elapsed: started.elapsed(),
            };
        }
        if known.as_ref().is_some_and(|t| t.state == TenantState::Suspended) {
            tracing::debug!(tenant, entries = group.len(), "tenant suspended; its entries wait");
            let _ = self.queue.release(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: 0,
                elapsed: started.elapsed(),
            };
        }
        if known.is_some_and(|t| t.state == TenantState::Deleting) {
            tracing::debug!(
                tenant,
                entries = group.len(),
                "tenant being deleted; its entries are dropped"
            );
            let _ = self.queue.ack(&tokens(&group)).await;
            return TurnDone {
                turn,
                instances,
                ran: group.len(),
                elapsed: started.elapsed(),
            };
        }
        let deadline = started + self.config.turn_budget * TURN_OVERRUN;
        let done = async {
            let mut outcome = TenantRun::new(self, &tenant, &group, &mut instances, deadline, retention)
                .run()
                .await?;
            let routed = std::mem::take(&mut outcome.routed);
            let stored = Usage {
                stored_logs: routed.len() as u64,
                stored_bytes: routed.iter().map(|r| r.record.size() as u64).sum(),
                ..Usage::default()
            };
            let sent = sent(&group[..outcome.ran], &tenant);
            self.write_stores(&tenant, &group[..outcome.ran], routed).await?;
            // What the pipeline stored counts apart from what ingest took:
            // a tenant's plugins may make more records than it sent.
            self.meter.record(&tenant, stored);
            if let Some(plan) = &plan {
                self.charge_stored(&tenant, plan, &stored, sent).await;
            }
            Ok::<_, PipelineError>(outcome)
        }
        .await;
        let ran = match done {
            Ok(outcome) => {
                // A plugin is disabled after failing on everything it was
                // given several times in a row; one bad record among good
                // ones does not count against it.
                if outcome.passed > 0 {
                    self.registry.record_success(&tenant);
                } else {
                    for (plugin, reason) in &outcome.failures {
                        if self.registry.record_failure(&tenant, plugin, reason).await {
                            self.metrics.plugin_disabled();
                        }
                    }
                }
                let (ran, unstarted) = group.split_at(outcome.ran);
                if let Err(e) = cpu::measured(cpu::Stage::Queue, self.queue.ack(&tokens(ran))).await {
                    tracing::error!(error = %e, "queue ack failed");
                }
                if !unstarted.is_empty() {
                    tracing::debug!(
                        tenant,
                        entries = unstarted.len(),
                        "turn over its budget; the rest waits"
                    );
                    let _ = self.queue.release(&tokens(unstarted)).await;
                }
                outcome.ran
            }
            Err(e) => {
                self.metrics.error("store");
                tracing::warn!(tenant, error = %e, "batch failed; its entries will be retried");
                tokio::time::sleep(backoff(&e)).await;
                let _ = self.queue.nack(&tokens(&group)).await;
                group.len()
            }
        };
        TurnDone {
            turn,
            instances,
            ran,
            elapsed: started.elapsed(),
        }
    }
}

/// What ingest charged for `entries`: records (lines, or a JSON body's
/// records) and bytes.
fn sent(entries: &[Delivery], tenant: &str) -> (u64, u64) {
    entries.iter().fold((0, 0), |(logs, bytes), d| {
        let e = &d.entry;
        let records = if e.content_type == "application/json" {
            loggerhub_codec::payload::scan_json(&e.body, tenant).map_or(1, |s| s.count)
        } else {
            crate::ingest::lines_in(&e.body)
        };
        (logs + records as u64, bytes + e.body.len() as u64)
    })
}
