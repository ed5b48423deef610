//! Media node failover on real processes: the edge (wrangler dev) with three media nodes reporting
//! to it, bridged calls from SIP-over-WebSocket clients whose WebRTC media is str0m (ICE, DTLS-SRTP
//! against the node, PCMU), to an upstream SIP server whose plain RTP socket this test owns.
//!
//! One node is killed (SIGKILL) during its call: the other calls' media keeps flowing both ways,
//! the lost call is ended by the edge for both sides (a BYE to the WebSocket client and one to the
//! upstream, each with `Reason: SIP;cause=503;text="Media Node Lost"`) within a bounded time. A
//! new call placed right after the kill, while the fleet still lists the dead node as active (and
//! the registry would pick it first), fails over to a live node and the dead one is marked
//! suspect; a new call once the fleet lists the node as gone goes elsewhere too. Then another node is drained
//! (SIGTERM) while it carries a call: that call's media keeps flowing until it is hung up normally,
//! a new call goes to the remaining active node, and the drained node exits after its call ended.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use shared::sip::HeaderName;
use tests::edge::Edge;
use tests::media::MediaNode;
use tests::phone::DemoStack;
use tests::process::wait_for;
use tests::sip_ws::{Dialog, SipWsClient};
use tests::upstream::UpstreamUas;
use tests::webrtc::{BrowserMedia, MediaFlow};

/// The nodes and their RTP port ranges (towards the upstream): a call's node is known by the port
/// of the plain RTP offer the upstream gets.
const NODES: [(&str, (u16, u16)); 3] = [
    ("fo-a", (42500, 42519)),
    ("fo-b", (42520, 42539)),
    ("fo-c", (42540, 42559)),
];
/// How long after the kill both sides of the lost call must have their BYE: two failed checks 5 s
/// apart, each bounded by the edge's 2 s check timeout, plus alarm and scheduling slack.
const LOST_CALL_BOUND: Duration = Duration::from_secs(20);
/// A window in which a live call must carry packets both ways (50 a second each way).
const WINDOW: Duration = Duration::from_millis(1500);
const MIN_PACKETS: u64 = 20;

fn node_of(port: u16) -> &'static str {
    NODES
        .iter()
        .find(|(_, (lo, hi))| (*lo..=*hi).contains(&port))
        .map_or("unknown", |(id, _)| *id)
}

/// The upstream's plain RTP socket (with its RTCP port after it): counts packets per source (each
/// call's node port) and sends a PCMU packet to every source it has heard every 20 ms (symmetric
/// RTP, as carriers do).
struct UpstreamMedia {
    addr: SocketAddr,
    counts: Arc<Mutex<HashMap<u16, u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UpstreamMedia {
    fn start() -> Self {
        let (rtp, rtcp) = (0..100)
            .find_map(|_| {
                let rtp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = rtp.local_addr().ok()?.port();
                if port % 2 != 0 || port == u16::MAX {
                    return None;
                }
                let rtcp = UdpSocket::bind(("127.0.0.1", port + 1)).ok()?;
                Some((rtp, rtcp))
            })
            .expect("an RTP port pair");
        rtp.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("read timeout");
        let addr = rtp.local_addr().expect("local addr");
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt) = (counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let _rtcp = rtcp;
            let mut buf = [0u8; 2048];
            let mut sources: Vec<SocketAddr> = Vec::new();
            let mut seq = 0u16;
            let mut last_send = Instant::now();
            while !halt.load(Ordering::Relaxed) {
                if let Ok((len, from)) = rtp.recv_from(&mut buf) {
                    if len >= 12 && buf[0] >> 6 == 2 {
                        if let Ok(mut c) = seen.lock() {
                            *c.entry(from.port()).or_insert(0) += 1;
                        }
                        if !sources.contains(&from) {
                            sources.push(from);
                        }
                    }
                }
                if last_send.elapsed() >= Duration::from_millis(20) {
                    last_send = Instant::now();
                    seq = seq.wrapping_add(1);
                    let mut p = vec![0x80, 0];
                    p.extend_from_slice(&seq.to_be_bytes());
                    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                    p.extend_from_slice(&0x0fa1_1ed0_u32.to_be_bytes());
                    p.extend_from_slice(&[0xff; 160]);
                    for s in &sources {
                        let _ = rtp.send_to(&p, s);
                    }
                }
            }
        });
        Self {
            addr,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    /// Packets received from a node's RTP port.
    fn received_from(&self, port: u16) -> u64 {
        self.counts
            .lock()
            .map(|c| c.get(&port).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for UpstreamMedia {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One bridged call from a WebSocket client to the upstream.
struct Call {
    ws: SipWsClient,
    media: MediaFlow,
    dialog: Dialog,
    call_id: String,
    /// The node's RTP port towards the upstream.
    node_port: u16,
    node: &'static str,
}

/// Calls 5551234 from `ws`; returns once the call is answered, ACKed and its media started.
fn place_call(mut ws: SipWsClient, stack: &DemoStack, uas: &UpstreamUas) -> Call {
    let (media, offer) = BrowserMedia::offer().expect("the browser's offer");
    let mut dialog = Dialog::new(&mut ws, "5551234");
    dialog
        .request(&mut ws, "INVITE", 1, Some(&offer))
        .expect("send INVITE");
    let answer = dialog
        .final_response(&mut ws, 1, Duration::from_secs(30))
        .unwrap_or_else(|e| {
            panic!(
                "no answer to the INVITE: {e}\nedge:\n{}",
                stack.edge.log_tail(40)
            )
        });
    assert_eq!(
        answer.status(),
        Some(200),
        "the call was refused: {answer:?}\nedge:\n{}",
        stack.edge.log_tail(40)
    );
    dialog
        .confirm(&answer)
        .expect("the 200 has a To and a Contact");
    dialog.request(&mut ws, "ACK", 1, None).expect("send ACK");
    let body = std::str::from_utf8(answer.body()).expect("SDP is text");
    let media = media.start(body).expect("the edge's answer is accepted");
    let call_id = dialog.call_id.clone();
    let invite = uas
        .find("INVITE", &call_id)
        .expect("the upstream got the INVITE");
    let node_port = invite.offer_port.expect("the upstream's offer has a port");
    Call {
        ws,
        media,
        dialog,
        call_id,
        node_port,
        node: node_of(node_port),
    }
}

fn send_in_dialog(call: &mut Call, method: &str, cseq: u32) {
    call.dialog
        .request(&mut call.ws, method, cseq, None)
        .expect("send");
}

/// Packets the call received at the browser and at the upstream so far.
fn counts(call: &Call, up: &UpstreamMedia) -> (u64, u64) {
    (call.media.received(), up.received_from(call.node_port))
}

/// Waits until the call's media flows both ways.
fn wait_flowing(call: &Call, up: &UpstreamMedia, logs: impl Fn() -> String) {
    let ok = wait_for(Duration::from_secs(20), || {
        let (b, u) = counts(call, up);
        (b >= MIN_PACKETS && u >= MIN_PACKETS).then_some(())
    });
    assert!(
        ok.is_some(),
        "the media of call {} on {} never flowed both ways: {:?}\n{}",
        call.call_id,
        call.node,
        counts(call, up),
        logs()
    );
}

/// Asserts each call carries packets both ways during one window.
fn assert_flowing(calls: &[&Call], up: &UpstreamMedia, what: &str, logs: impl Fn() -> String) {
    let before: Vec<(u64, u64)> = calls.iter().map(|c| counts(c, up)).collect();
    std::thread::sleep(WINDOW);
    for (call, (b0, u0)) in calls.iter().zip(before) {
        let (b1, u1) = counts(call, up);
        assert!(
            b1 - b0 >= MIN_PACKETS && u1 - u0 >= MIN_PACKETS,
            "{what}: call {} on {} carried {} packets to the browser and {} to the upstream in {WINDOW:?}\n{}",
            call.call_id,
            call.node,
            b1 - b0,
            u1 - u0,
            logs()
        );
    }
}

fn fleet_state(edge: &Edge, id: &str) -> Option<String> {
    let fleet = edge.send(&edge.admin("GET", "/admin/fleet")).ok()?.json();
    fleet["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["state"].as_str().map(str::to_owned))
}

/// Named with its file's name so that `cargo xtask test fleet_failover` selects it.
#[test]
fn fleet_failover_killed_node_ends_its_call_for_both_sides_and_drained_node_finishes_its_call() {
    let upstream_media = UpstreamMedia::start();
    let uas = UpstreamUas::start(upstream_media.addr).expect("upstream SIP server");
    let stack = DemoStack::start(
        "fleet-failover",
        &["1001", "1002", "1003", "1004", "1005"],
        json!({ "registration": "local", "upstream": {
            "host": "127.0.0.1", "port": uas.addr.port(), "transport": "tcp", "media": "bridge" } }),
    );
    // A long drain timeout: the drained node must wait for its call, not for the clock. Ten calls
    // each (two ports per call).
    let mut nodes: Vec<MediaNode> = NODES
        .iter()
        .map(|(id, range)| {
            let env = [
                ("MEDIA_NODE_DRAIN_TIMEOUT_SECS", "120"),
                ("MEDIA_NODE_CAPACITY", "10"),
            ];
            stack.media_node(id, *range, &env)
        })
        .collect();
    let logs = |nodes: &[MediaNode]| {
        let mut text = format!("--- edge ---\n{}\n", stack.edge.log_tail(40));
        for n in nodes {
            text.push_str(&format!("--- {} ---\n{}\n", n.id, n.log_tail(15)));
        }
        text.push_str(&format!(
            "--- upstream got ---\n{:#?}\n(all logs in {})",
            uas.received(),
            stack.dir.display()
        ));
        text
    };

    // Three calls, spread over the three nodes (least loaded first).
    let mut calls: Vec<Call> = ["1001", "1002", "1003"]
        .iter()
        .map(|user| {
            let ws = stack.register(user);
            place_call(ws, &stack, &uas)
        })
        .collect();
    for c in &calls {
        wait_flowing(c, &upstream_media, || logs(&nodes));
    }
    let mut used: Vec<&str> = calls.iter().map(|c| c.node).collect();
    used.sort_unstable();
    assert_eq!(used, ["fo-a", "fo-b", "fo-c"], "one call per node");

    // Kill the node of the first call.
    let lost = calls.remove(0);
    let dead = lost.node;
    let dead_index = NODES
        .iter()
        .position(|(id, _)| *id == dead)
        .expect("a node");
    let caller = stack.register("1005");
    let killed_at = Instant::now();
    nodes[dead_index].process().signal(Signal::SIGKILL);

    // A new call at once, before the registry has missed a report of the dead node: all three
    // nodes carry one call, so the registry's first choice is the dead one (equal load, then by
    // id); the allocation must fail over to a live node.
    assert_eq!(
        fleet_state(&stack.edge, dead).as_deref(),
        Some("active"),
        "the registry has not noticed the kill yet"
    );
    let mut quick = place_call(caller, &stack, &uas);
    assert_ne!(
        quick.node, dead,
        "a call placed just after the kill went to the dead node"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(shared::fleet::DEFAULT_STALE_AFTER_MS / 1000),
        "the call after the kill took too long to test failover ({:?})",
        killed_at.elapsed()
    );
    let fleet = stack
        .edge
        .send(&stack.edge.admin("GET", "/admin/fleet"))
        .expect("fleet")
        .json();
    let dead_entry = fleet["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["id"] == dead).cloned())
        .unwrap_or_default();
    assert!(
        dead_entry["suspect_until"].is_u64(),
        "the failed allocation marked {dead} suspect: {dead_entry}\n{}",
        logs(&nodes)
    );
    wait_flowing(&quick, &upstream_media, || logs(&nodes));
    println!(
        "a call placed right after SIGKILL failed over to {} in {:?}",
        quick.node,
        killed_at.elapsed()
    );
    // Hung up again, so the drain below finds one call per surviving node.
    send_in_dialog(&mut quick, "BYE", 2);
    let quick_id = quick.call_id.clone();
    quick
        .ws
        .wait_response(&quick_id, "BYE", 200)
        .unwrap_or_else(|e| panic!("hanging up the failed-over call: {e}\n{}", logs(&nodes)));
    drop(quick);

    let mut lost = lost;
    let bye = lost
        .ws
        .wait_for("the edge's BYE for the lost call", LOST_CALL_BOUND, |m| {
            m.method().is_some_and(|x| x.as_str() == "BYE")
        })
        .unwrap_or_else(|e| {
            panic!(
                "the browser side of the lost call was not hung up: {e}\n{}",
                logs(&nodes)
            )
        });
    let browser_bye_after = killed_at.elapsed();
    assert_eq!(bye.call_id().ok(), Some(lost.call_id.as_str()));
    let reason = bye
        .headers
        .get(&HeaderName::Other("Reason".into()))
        .map(str::to_owned);
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("Media Node Lost")),
        "the BYE says why: {bye:?}"
    );
    let ok = bye.response_to(200, "OK", None).expect("200 to the BYE");
    lost.ws
        .send_raw(&String::from_utf8_lossy(&ok.to_bytes()))
        .expect("answer the BYE");
    let upstream_bye = wait_for(Duration::from_secs(5), || uas.find("BYE", &lost.call_id))
        .unwrap_or_else(|| {
            panic!(
                "the upstream side of the lost call was not hung up\n{}",
                logs(&nodes)
            )
        });
    let upstream_bye_after = upstream_bye.at.duration_since(killed_at);
    assert!(
        upstream_bye
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("cause=503") && r.contains("Media Node Lost")),
        "the upstream's BYE says why: {upstream_bye:?}"
    );
    assert!(
        upstream_bye_after <= LOST_CALL_BOUND,
        "the upstream's BYE came {upstream_bye_after:?} after the kill"
    );
    println!(
        "lost call on {dead} ended {browser_bye_after:?} (browser) and {upstream_bye_after:?} (upstream) after SIGKILL"
    );

    // The other calls never stopped.
    assert_flowing(
        &[&calls[0], &calls[1]],
        &upstream_media,
        "after the kill",
        || logs(&nodes),
    );

    // Once the fleet lists the dead node as gone, new calls go elsewhere; the account whose call
    // was lost calls again (its state was cleaned up).
    let gone = wait_for(Duration::from_secs(30), || {
        (fleet_state(&stack.edge, dead).as_deref() == Some("gone")).then_some(())
    });
    assert!(
        gone.is_some(),
        "the fleet never listed {dead} as gone\n{}",
        logs(&nodes)
    );
    let again = place_call(lost.ws, &stack, &uas);
    assert_ne!(again.node, dead, "a new call went to the dead node");
    wait_flowing(&again, &upstream_media, || logs(&nodes));
    calls.push(again);

    // Drain the survivor with fewer calls while its call goes on.
    let on = |node: &str| calls.iter().filter(|c| c.node == node).count();
    let survivors: Vec<&str> = NODES
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != dead)
        .collect();
    let (drained, other) = if on(survivors[0]) <= on(survivors[1]) {
        (survivors[0], survivors[1])
    } else {
        (survivors[1], survivors[0])
    };
    assert_eq!(on(drained), 1, "the drained node has one call");
    let drained_index = NODES
        .iter()
        .position(|(id, _)| *id == drained)
        .expect("a node");
    nodes[drained_index].process().signal(Signal::SIGTERM);
    let draining = wait_for(Duration::from_secs(15), || {
        (fleet_state(&stack.edge, drained).as_deref() == Some("draining")).then_some(())
    });
    assert!(
        draining.is_some(),
        "the fleet never listed {drained} as draining\n{}",
        logs(&nodes)
    );
    let drained_call = calls
        .iter()
        .position(|c| c.node == drained)
        .expect("the drained node's call");
    assert_flowing(
        &[&calls[drained_call]],
        &upstream_media,
        "while draining",
        || logs(&nodes),
    );
    // Draining nodes take no new calls, even when they are the least loaded.
    let fresh = place_call(stack.register("1004"), &stack, &uas);
    assert_eq!(fresh.node, other, "a new call during the drain");
    wait_flowing(&fresh, &upstream_media, || logs(&nodes));
    assert_flowing(
        &[&calls[drained_call]],
        &upstream_media,
        "still draining",
        || logs(&nodes),
    );
    assert_eq!(
        nodes[drained_index].process().try_wait().ok().flatten(),
        None,
        "the drained node waits for its call"
    );

    // The drained node's call ends normally; then the node exits by itself.
    let mut ending = calls.remove(drained_call);
    send_in_dialog(&mut ending, "BYE", 2);
    let call_id = ending.call_id.clone();
    ending
        .ws
        .wait_response(&call_id, "BYE", 200)
        .unwrap_or_else(|e| panic!("hanging up the drained node's call: {e}\n{}", logs(&nodes)));
    let bye = uas.find("BYE", &call_id).expect("the upstream got the BYE");
    assert_eq!(bye.reason, None, "a normal hang-up has no media Reason");
    let exited = wait_for(Duration::from_secs(20), || {
        nodes[drained_index].process().try_wait().ok().flatten()
    });
    assert!(
        exited.is_some_and(|s| s.success()),
        "the drained node did not exit cleanly after its last call ({exited:?})\n{}",
        logs(&nodes)
    );
    drop(ending);
    assert_flowing(&[&calls[0], &fresh], &upstream_media, "at the end", || {
        logs(&nodes)
    });
}
