//! The fleet registry: the latest report of every media node, and the choice of a node per call.
//!
//! Sans-IO: the Worker's registry object feeds reports and the time in and persists [`Registry`]
//! (it is serde). A node is *healthy* while its last report is younger than
//! [`Registry::stale_after_ms`]; a node that stops reporting drops out of the choice within that
//! time, and out of the listing (as `"state": "gone"`) until it is forgotten after
//! [`FORGET_AFTER_MS`]. Calls go to a healthy, active (not draining) node with room, in the caller's
//! region when one is there, else anywhere, least loaded first.
//!
//! A node an account object could not allocate on (connection refused, no answer in time, 503 or
//! draining) is *suspect* for [`SUSPECT_MS`] ([`Registry::suspect`]): no account gets it in that
//! time, so a node that just died stops taking calls long before its reports are missed. The
//! account retries on another node, naming the ones that failed it ([`PickRequest::exclude`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::control::report::{NodeReport, NodeState};

/// Default time after which a silent node is out of the choice (three missed 5 s reports).
pub const DEFAULT_STALE_AFTER_MS: u64 = 15_000;
/// A node silent this long is removed from the listing.
pub const FORGET_AFTER_MS: u64 = 10 * 60 * 1000;
/// How long a node an allocation failed on gets no new calls.
pub const SUSPECT_MS: u64 = 10_000;
/// Most nodes one allocation tries before it gives up.
pub const MAX_ALLOCATION_ATTEMPTS: usize = 3;

/// What an account object asks the registry (`POST /pick`, JSON): a node for a new call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickRequest {
    /// Node regions nearest to the caller, nearest first.
    #[serde(default)]
    pub preferred: Vec<String>,
    /// Nodes not to pick (this allocation failed on them already).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// What an account object tells the registry (`POST /suspect`, JSON): allocating on this node
/// failed (transport failure, timeout, 503 or draining).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspectRequest {
    /// The node.
    pub node_id: String,
}

/// Which node regions are nearest to callers, by where Cloudflare's edge saw them: an operator
/// setting (Worker variable `MEDIA_REGIONS`, JSON), keyed by ISO country code or continent code, each
/// with node regions nearest first, e.g. `{"DE": ["eu-central"], "EU": ["eu-central", "eu-north"],
/// "NA": ["us-east"]}`. The country entry wins over the continent one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionPreferences(BTreeMap<String, Vec<String>>);

impl RegionPreferences {
    /// Parses the JSON setting; the error says what is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("MEDIA_REGIONS must be a JSON object of country or continent code => [node regions]: {e}")
        })
    }

    /// Node regions for a caller in `country` on `continent` (either may be unknown), nearest first.
    pub fn for_caller(&self, country: Option<&str>, continent: Option<&str>) -> Vec<String> {
        let mut regions: Vec<String> = Vec::new();
        for key in [country, continent].into_iter().flatten() {
            for r in self.0.get(&key.to_ascii_uppercase()).into_iter().flatten() {
                if !regions.contains(r) {
                    regions.push(r.clone());
                }
            }
        }
        regions
    }
}

/// How a report arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// HTTP/3 over QUIC.
    H3,
    /// HTTPS (or HTTP/1.1-2 on loopback) over TCP.
    Https,
}

/// What the registry knows of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The latest report.
    pub report: NodeReport,
    /// When it arrived, ms since the Unix epoch.
    pub last_report_at_ms: u64,
    /// How it arrived.
    pub last_report_via: Via,
}

/// A node as `GET /admin/fleet` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub id: String,
    /// Region.
    pub region: String,
    /// `active`, `draining`, or `gone` (no report for a while).
    pub state: String,
    /// Sessions it carries.
    pub active_calls: u32,
    /// Most sessions it takes.
    pub capacity: u32,
    /// When its last report arrived (ms since the Unix epoch).
    pub last_report_at: u64,
    /// `h3` or `https`.
    pub last_report_via: Via,
    /// Where its control API is.
    pub control_url: String,
    /// Until when (ms since the Unix epoch) it gets no new calls because an allocation on it
    /// failed; absent when it is not suspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect_until: Option<u64>,
}

/// A node chosen for a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    /// Node id.
    pub id: String,
    /// Where to send control requests.
    pub control_url: String,
}

/// Every node's latest report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    nodes: BTreeMap<String, NodeEntry>,
    /// A node without a report this long is out of the choice.
    pub stale_after_ms: u64,
    /// Suspect nodes: id -> until when (ms) they get no new calls.
    #[serde(default)]
    suspects: BTreeMap<String, u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            nodes: BTreeMap::new(),
            stale_after_ms: DEFAULT_STALE_AFTER_MS,
            suspects: BTreeMap::new(),
        }
    }
}

impl Registry {
    /// Records a report received at `now_ms`.
    pub fn apply(&mut self, now_ms: u64, report: NodeReport, via: Via) {
        self.nodes
            .retain(|_, n| now_ms.saturating_sub(n.last_report_at_ms) < FORGET_AFTER_MS);
        self.nodes.insert(
            report.node_id.clone(),
            NodeEntry {
                report,
                last_report_at_ms: now_ms,
                last_report_via: via,
            },
        );
    }

    /// Counts a call placed on `node_id` until its next report says otherwise (so a burst of calls
    /// between two reports spreads over the fleet).
    pub fn note_call(&mut self, node_id: &str) {
        if let Some(n) = self.nodes.get_mut(node_id) {
            n.report.active_calls = n.report.active_calls.saturating_add(1);
        }
    }

    /// An allocation on `node_id` failed at `now_ms`: it gets no new calls for [`SUSPECT_MS`].
    /// Unknown nodes are ignored (the caller cannot make the registry remember made-up ids).
    pub fn suspect(&mut self, now_ms: u64, node_id: &str) {
        self.suspects.retain(|_, until| *until > now_ms);
        if self.nodes.contains_key(node_id) {
            self.suspects
                .insert(node_id.to_owned(), now_ms.saturating_add(SUSPECT_MS));
        }
    }

    fn suspect_until(&self, now_ms: u64, node_id: &str) -> Option<u64> {
        self.suspects
            .get(node_id)
            .copied()
            .filter(|until| *until > now_ms)
    }

    fn healthy(&self, now_ms: u64, n: &NodeEntry) -> bool {
        now_ms.saturating_sub(n.last_report_at_ms) < self.stale_after_ms
    }

    /// The node for a new call: healthy, active, with room; in the first of `preferred` regions
    /// (nearest to the caller first) that has one, else anywhere; least loaded (by share of
    /// capacity) first.
    pub fn pick(&self, now_ms: u64, preferred: &[String]) -> Option<Pick> {
        self.pick_excluding(now_ms, preferred, &[])
    }

    /// [`Registry::pick`] among the nodes that are neither in `exclude` nor suspect.
    pub fn pick_excluding(
        &self,
        now_ms: u64,
        preferred: &[String],
        exclude: &[String],
    ) -> Option<Pick> {
        let candidates = self.nodes.values().filter(|n| {
            self.healthy(now_ms, n)
                && n.report.state == NodeState::Active
                && n.report.active_calls < n.report.capacity
                && !exclude.contains(&n.report.node_id)
                && self.suspect_until(now_ms, &n.report.node_id).is_none()
        });
        let load =
            |n: &NodeEntry| f64::from(n.report.active_calls) / f64::from(n.report.capacity.max(1));
        let rank = |n: &NodeEntry| {
            preferred
                .iter()
                .position(|r| *r == n.report.region)
                .unwrap_or(preferred.len())
        };
        let best = candidates.min_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(load(a).total_cmp(&load(b)))
                .then(a.report.node_id.cmp(&b.report.node_id))
        })?;
        Some(Pick {
            id: best.report.node_id.clone(),
            control_url: best.report.control_url.clone(),
        })
    }

    /// Every known node, by id.
    pub fn list(&self, now_ms: u64) -> Vec<NodeView> {
        self.nodes
            .values()
            .map(|n| NodeView {
                id: n.report.node_id.clone(),
                region: n.report.region.clone(),
                state: if !self.healthy(now_ms, n) {
                    "gone".into()
                } else if n.report.state == NodeState::Draining {
                    "draining".into()
                } else {
                    "active".into()
                },
                active_calls: n.report.active_calls,
                capacity: n.report.capacity,
                last_report_at: n.last_report_at_ms,
                last_report_via: n.last_report_via,
                control_url: n.report.control_url.clone(),
                suspect_until: self.suspect_until(now_ms, &n.report.node_id),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(id: &str, region: &str, state: NodeState, calls: u32, capacity: u32) -> NodeReport {
        NodeReport {
            node_id: id.into(),
            region: region.into(),
            control_url: format!("http://{id}:9090"),
            state,
            active_calls: calls,
            capacity,
            uptime_s: 1,
            finished_calls: Vec::new(),
        }
    }

    #[test]
    fn least_loaded_active_node_in_the_callers_region_is_picked() {
        let mut r = Registry::default();
        r.apply(0, report("eu-1", "eu", NodeState::Active, 50, 100), Via::H3);
        r.apply(0, report("eu-2", "eu", NodeState::Active, 10, 100), Via::H3);
        r.apply(
            0,
            report("us-1", "us", NodeState::Active, 0, 100),
            Via::Https,
        );
        let regions = |list: &[&str]| list.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
        let pick = |list: &[&str]| r.pick(1_000, &regions(list)).map(|p| p.id);
        assert_eq!(pick(&["eu"]), Some("eu-2".into()));
        assert_eq!(pick(&["us"]), Some("us-1".into()));
        assert_eq!(
            pick(&[]),
            Some("us-1".into()),
            "no preference: least loaded anywhere"
        );
        assert_eq!(
            pick(&["ap"]),
            Some("us-1".into()),
            "no node in ap: anywhere"
        );
        assert_eq!(
            pick(&["ap", "us", "eu"]),
            Some("us-1".into()),
            "the first region with a node wins"
        );
    }

    #[test]
    fn draining_full_and_silent_nodes_get_no_calls() {
        let mut r = Registry::default();
        r.apply(0, report("a", "eu", NodeState::Draining, 0, 100), Via::H3);
        r.apply(0, report("b", "eu", NodeState::Active, 100, 100), Via::H3);
        r.apply(0, report("c", "eu", NodeState::Active, 0, 100), Via::H3);
        let eu = ["eu".to_owned()];
        assert_eq!(r.pick(1_000, &eu).map(|p| p.id), Some("c".into()));
        assert_eq!(
            r.pick(DEFAULT_STALE_AFTER_MS, &eu),
            None,
            "c stopped reporting"
        );
        let states: Vec<String> = r
            .list(DEFAULT_STALE_AFTER_MS)
            .into_iter()
            .map(|n| n.state)
            .collect();
        assert_eq!(states, ["gone", "gone", "gone"]);
        let fresh: Vec<String> = r.list(1).into_iter().map(|n| n.state).collect();
        assert_eq!(fresh, ["draining", "active", "active"]);
    }

    #[test]
    fn calls_between_reports_spread_over_nodes() {
        let mut r = Registry::default();
        r.apply(0, report("a", "eu", NodeState::Active, 0, 10), Via::H3);
        r.apply(0, report("b", "eu", NodeState::Active, 0, 10), Via::H3);
        let mut picks = Vec::new();
        for _ in 0..4 {
            let p = r.pick(1, &[]).unwrap();
            r.note_call(&p.id);
            picks.push(p.id);
        }
        assert_eq!(picks, ["a", "b", "a", "b"]);
    }

    #[test]
    fn callers_country_comes_before_their_continent() {
        let prefs = RegionPreferences::from_json(
            r#"{"DE": ["eu-central"], "EU": ["eu-north", "eu-central"], "NA": ["us-east"]}"#,
        )
        .unwrap();
        assert_eq!(
            prefs.for_caller(Some("de"), Some("EU")),
            ["eu-central", "eu-north"]
        );
        assert_eq!(
            prefs.for_caller(Some("FR"), Some("EU")),
            ["eu-north", "eu-central"]
        );
        assert_eq!(prefs.for_caller(None, Some("NA")), ["us-east"]);
        assert!(prefs.for_caller(Some("JP"), Some("AS")).is_empty());
        assert!(RegionPreferences::from_json("[1, 2]")
            .unwrap_err()
            .contains("MEDIA_REGIONS"));
    }

    #[test]
    fn excluded_nodes_are_skipped_in_region_then_load_order() {
        let mut r = Registry::default();
        r.apply(0, report("eu-1", "eu", NodeState::Active, 0, 10), Via::H3);
        r.apply(0, report("eu-2", "eu", NodeState::Active, 5, 10), Via::H3);
        r.apply(0, report("us-1", "us", NodeState::Active, 0, 10), Via::H3);
        let eu = ["eu".to_owned()];
        let pick = |exclude: &[&str]| {
            let exclude: Vec<String> = exclude.iter().map(|s| (*s).to_owned()).collect();
            r.pick_excluding(1, &eu, &exclude).map(|p| p.id)
        };
        assert_eq!(pick(&[]), Some("eu-1".into()));
        assert_eq!(pick(&["eu-1"]), Some("eu-2".into()), "next in the region");
        assert_eq!(
            pick(&["eu-1", "eu-2"]),
            Some("us-1".into()),
            "then another region"
        );
        assert_eq!(pick(&["eu-1", "eu-2", "us-1"]), None);
    }

    #[test]
    fn a_suspect_node_gets_no_calls_for_a_while_from_anyone() {
        let mut r = Registry::default();
        r.apply(0, report("a", "eu", NodeState::Active, 0, 10), Via::H3);
        r.apply(0, report("b", "eu", NodeState::Active, 3, 10), Via::H3);
        assert_eq!(r.pick(100, &[]).map(|p| p.id), Some("a".into()));
        r.suspect(100, "a");
        r.suspect(100, "made-up");
        assert_eq!(
            r.pick(101, &[]).map(|p| p.id),
            Some("b".into()),
            "every caller skips it, not only the one that failed"
        );
        let view = r.list(101);
        assert_eq!(view[0].suspect_until, Some(100 + SUSPECT_MS));
        assert_eq!(view[0].state, "active", "still listed by its reports");
        assert_eq!(view.len(), 2, "unknown ids are not remembered");
        // Still suspect after a report (a half-dead node may report yet refuse sessions) ...
        r.apply(5_000, report("a", "eu", NodeState::Active, 0, 10), Via::H3);
        assert_eq!(r.pick(5_001, &[]).map(|p| p.id), Some("b".into()));
        // ... until the time is up.
        assert_eq!(
            r.pick(100 + SUSPECT_MS, &[]).map(|p| p.id),
            Some("a".into())
        );
        assert_eq!(r.list(100 + SUSPECT_MS)[0].suspect_until, None);
    }

    #[test]
    fn registry_stored_before_suspects_existed_still_loads() {
        let mut r = Registry::default();
        r.apply(0, report("a", "eu", NodeState::Active, 0, 10), Via::H3);
        let mut json = serde_json::to_value(&r).unwrap();
        json.as_object_mut().unwrap().remove("suspects");
        let old: Registry = serde_json::from_value(json).unwrap();
        assert_eq!(old.pick(1, &[]).map(|p| p.id), Some("a".into()));
        let req: PickRequest = serde_json::from_str(r#"{"preferred": ["eu"]}"#).unwrap();
        assert!(req.exclude.is_empty());
    }

    #[test]
    fn nodes_silent_for_long_are_forgotten() {
        let mut r = Registry::default();
        r.apply(0, report("old", "eu", NodeState::Active, 0, 10), Via::H3);
        r.apply(
            FORGET_AFTER_MS,
            report("new", "eu", NodeState::Active, 0, 10),
            Via::H3,
        );
        let ids: Vec<String> = r.list(FORGET_AFTER_MS).into_iter().map(|n| n.id).collect();
        assert_eq!(ids, ["new"]);
    }
}
