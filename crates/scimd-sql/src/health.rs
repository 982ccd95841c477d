//! Whether writes are failing, for readiness. A write that fails because the database
//! cannot take it (a full disk, an unreachable server) marks writes as failing; the next
//! write that commits clears it. While they fail, a readiness check writes one row itself
//! (`scimd_health`), so that an instance taken out of rotation notices on its own that
//! writes work again.

use scimd_core::store::{Outage, StoreError};
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct WriteHealth {
    failing: Mutex<Option<(Outage, String)>>,
}

impl WriteHealth {
    /// Records how a write ended.
    pub fn record<T>(&self, result: &Result<T, StoreError>) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => *failing = None,
            Err(StoreError::Unavailable(outage @ (Outage::StorageFull | Outage::Unreachable), why)) => {
                if failing.is_none() {
                    tracing::warn!(%outage, cause = %why, "writes are failing");
                }
                *failing = Some((*outage, why.clone()));
            }
            Err(_) => {}
        }
    }

    /// The outage writes last failed with, while they are failing.
    pub fn failing(&self) -> Option<(Outage, String)> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The probe write's statement.
pub(crate) const PROBE: &str = "INSERT INTO scimd_health (id, checked) VALUES (1, ";
pub(crate) const PROBE_END: &str = ") ON CONFLICT (id) DO UPDATE SET checked = excluded.checked";
