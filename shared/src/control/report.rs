//! Reports from media nodes to the control plane: health, capacity, load and finished calls.
//!
//! A node POSTs a [`NodeReport`] to its `report_url` (the Worker's `/fleet/report`) every few
//! seconds, over HTTP/3 where UDP gets through and HTTPS where it does not. The body is a control
//! body ([`super::encode`]) signed like every control request ([`super::auth`]) with the fleet
//! secret. The Worker's fleet registry keeps the latest report of each node and picks nodes for
//! calls from them.

use serde::{Deserialize, Serialize};

use super::SessionStats;

/// Path of the report endpoint on the Worker.
pub const REPORT_PATH: &str = "/fleet/report";

/// Whether a node takes new calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// Takes new calls.
    Active,
    /// Finishing its calls, taking no new ones (shutting down or scaled in).
    Draining,
}

/// One report of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node's id, unique in the fleet.
    pub node_id: String,
    /// Its region (matched against the caller's, nearest first).
    pub region: String,
    /// Where the Worker reaches its control API, e.g. `https://203.0.113.7:9090`.
    pub control_url: String,
    /// Active or draining.
    pub state: NodeState,
    /// Sessions it is carrying now.
    pub active_calls: u32,
    /// Most sessions it takes.
    pub capacity: u32,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Sessions that ended since the previous report, with what they carried.
    pub finished_calls: Vec<CallRecord>,
}

/// The quality record of one finished session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The session.
    pub session_id: String,
    /// SIP Call-ID the session was allocated for.
    pub call_id: String,
    /// How long it lasted, milliseconds.
    pub duration_ms: u64,
    /// Why it ended: `released`, `media-timeout`, `shutdown`.
    pub end_reason: String,
    /// Packets, bytes, loss, jitter, RTT and MOS.
    pub stats: SessionStats,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{decode, encode};

    #[test]
    fn report_round_trips_as_a_versioned_control_body() {
        let report = NodeReport {
            node_id: "fra-1".into(),
            region: "eu-central".into(),
            control_url: "https://10.0.0.1:9090".into(),
            state: NodeState::Draining,
            active_calls: 3,
            capacity: 500,
            uptime_s: 86_400,
            finished_calls: vec![CallRecord {
                session_id: "s1".into(),
                call_id: "c1".into(),
                duration_ms: 61_000,
                end_reason: "released".into(),
                stats: SessionStats::default(),
            }],
        };
        let body = encode(&report);
        assert_eq!(decode::<NodeReport>(&body).unwrap(), report);
    }
}
