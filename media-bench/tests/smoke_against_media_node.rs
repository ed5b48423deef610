//! Two calls for one second through the real media node binary (`target/debug/media-node`, which
//! `cargo xtask test` builds first): the generator's whole path (signalling over the signed
//! control API, ICE, DTLS, SRTP, plain RTP, stamped payloads) works, packets cross both ways,
//! none is lost. No speed figure is asserted: those live in `cargo xtask bench media`.

use std::time::Duration;

use media_bench::runner::{run_step, StepConfig};
use media_bench::target::Ours;
use tests::media::MediaNode;

#[test]
fn two_calls_cross_the_media_node_both_ways_without_loss() {
    let dir = tests::scratch_dir("media-bench-smoke").expect("scratch dir");
    let secret = "media-bench-smoke-fleet-secret";
    let node = MediaNode::start("bench-smoke", secret, None, (43_100, 43_199), &dir, &[])
        .unwrap_or_else(|e| panic!("media node: {e}"));
    let mut target = Ours::new(node.control, secret);
    let mut node = node;
    let pid = node.process().pid();
    let report = run_step(
        &mut target,
        &StepConfig {
            calls: 2,
            window: Duration::from_secs(1),
            warmup: Duration::from_millis(500),
            threads: 1,
            bridge_pid: pid,
            connect_timeout: Duration::from_secs(10),
        },
    )
    .unwrap_or_else(|e| panic!("step failed: {e:#}\n{}", node.log_tail(20)));
    assert_eq!((report.set_up, report.connected), (2, 2), "{report:?}");
    // 2 calls x 50 packets/s x 1 s each way, give or take a slot at the window's edges.
    for (name, d) in [
        ("to far end", &report.to_far_end),
        ("to caller", &report.to_caller),
    ] {
        assert!(d.sent >= 90, "{name}: only {} sent: {report:?}", d.sent);
        assert_eq!(d.received, d.sent, "{name} lost packets: {report:?}");
        assert_eq!(d.duplicates, 0, "{name}: {report:?}");
    }
    assert_eq!(report.loss_pct, 0.0);
    assert_eq!(report.foreign_packets, 0, "{report:?}");
    assert!(report.rss_before_kib > 0);
}
