//! Changes the runtime received but failed to store (a commit failed, say
//! on a full disk). The sync states of their sessions still say the peer's
//! changes arrived, so neither side would send them again before a
//! reconnect: the sessions forget that and reconcile anew.

use automerge::sync::State;

use super::{Engine, item_key};
use crate::key::DocKey;

impl Engine {
    /// The runtime dropped what peers sent for `keys` (it was not stored):
    /// every session of their spaces starts those documents' sync states
    /// over, asking the peer to forget what it sent (Automerge's sync
    /// reset), and counts them as pending, so the session's next retry
    /// reconciles and fetches them again. Retries back off as usual, so a
    /// store that keeps failing costs one exchange per retry period.
    pub fn lost(&mut self, keys: &[DocKey]) {
        for key in keys {
            let item = item_key(key);
            for p in self.peers.values_mut() {
                let Some(s) = p.sessions.get_mut(key.space()) else {
                    continue;
                };
                let their_capabilities = s
                    .states
                    .get(&item)
                    .and_then(|st| st.their_capabilities.clone());
                s.states.insert(
                    item.clone(),
                    State {
                        needs_reset: true,
                        their_capabilities,
                        ..State::default()
                    },
                );
                s.pending.insert(item.clone());
                s.reconciled = false;
            }
        }
    }
}
