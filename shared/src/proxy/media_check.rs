//! Calls whose media node died: the core asks the shell, every
//! `limits.media_check_interval_ms` while it has bridge sessions, whether each session is still
//! there ([`Output::CheckMedia`]), and ends the calls whose session is gone or whose node stays
//! unreachable. See the module docs' "Media lost" item.

use super::core::AccountCore;
use super::io::{Hop, MediaHealth, Output};
use crate::sip::{Header, HeaderName, Method};

/// The status and reason phrase of a call that could not be set up because its media went.
const LOST_STATUS: (u16, &str) = (503, "Media Node Lost");

/// The RFC 3326 `Reason` of the BYEs and CANCELs that end a call whose media went.
pub(crate) fn media_lost_reason() -> Header {
    Header::new(
        HeaderName::Other("Reason".into()),
        format!("SIP;cause={};text=\"{}\"", LOST_STATUS.0, LOST_STATUS.1),
    )
}

impl AccountCore {
    fn has_sessions(&self) -> bool {
        self.bridges.iter().any(|c| c.session.is_some())
    }

    /// When the sessions are next checked: never while there are none.
    pub(super) fn media_check_due(&self) -> Option<u64> {
        self.next_media_check.filter(|_| self.has_sessions())
    }

    /// Arms the check timer for a session being allocated (unless it runs for others already).
    pub(super) fn arm_media_check(&mut self) {
        let running = self.has_sessions() && self.next_media_check.is_some_and(|t| t >= self.now);
        if !running {
            let interval = self.config.limits.media_check_interval_ms.max(1);
            self.next_media_check = Some(self.now.saturating_add(interval));
        }
    }

    /// Asks for a check of every session when it is time.
    pub(super) fn media_checks(&mut self, now: u64) {
        let Some(due) = self.next_media_check else {
            return;
        };
        if due > now {
            return;
        }
        let sessions: Vec<String> = self
            .bridges
            .iter()
            .filter_map(|c| c.session.clone())
            .collect();
        if sessions.is_empty() {
            self.next_media_check = None;
            return;
        }
        let interval = self.config.limits.media_check_interval_ms.max(1);
        self.next_media_check = Some(now.saturating_add(interval));
        for session in sessions {
            self.out.push_back(Output::CheckMedia { session });
        }
    }

    /// [`Event::MediaChecked`](super::Event::MediaChecked).
    pub(super) fn on_media_checked(&mut self, session: &str, health: MediaHealth) {
        let Some(pos) = self
            .bridges
            .iter()
            .position(|c| c.session.as_deref() == Some(session))
        else {
            return;
        };
        let needed = self.config.limits.media_check_failures.max(1);
        let call = &mut self.bridges[pos];
        match health {
            MediaHealth::Alive => {
                call.media_misses = 0;
                return;
            }
            MediaHealth::Unreachable => {
                call.media_misses = call.media_misses.saturating_add(1);
                if call.media_misses < needed {
                    return;
                }
            }
            MediaHealth::Gone => {}
        }
        self.end_media_lost(pos);
    }

    /// Ends the call at `pos` for both sides: an established one with a BYE each way (as the
    /// other side), one being set up like any bridge failure (CANCEL the branches, 503 to the
    /// caller, hang up a held 2xx); all with the `Reason` and the session released.
    fn end_media_lost(&mut self, pos: usize) {
        let reason = media_lost_reason();
        let (status, phrase) = LOST_STATUS;
        if self.bridges[pos].dialog.is_none() {
            let tx = self.bridges[pos].tx;
            self.bridge_fail_with(tx, status, phrase, None, Some(&reason));
            return;
        }
        let call = self.bridges.remove(pos);
        let Some(d) = call.dialog else { return };
        if let Some((_, t)) = d.reoffer {
            // A re-offer (an ICE restart, as often as not) waits for the node that is gone.
            self.answer_tx(t, status, phrase);
            self.start_linger(t);
        }
        self.release(call.session);
        let browser = call.conn.map(Hop::Browser);
        let sides = [
            (d.to_browser, browser),
            (d.to_upstream, Some(Hop::Upstream)),
        ];
        for (leg, to) in sides {
            let Some(to) = to else { continue };
            if let Some(mut bye) = self.leg_request(&leg, Method::BYE, &call.call_id, &to) {
                super::transaction::insert_before_length(&mut bye, reason.clone());
                self.send(&to, bye);
            }
        }
    }
}
