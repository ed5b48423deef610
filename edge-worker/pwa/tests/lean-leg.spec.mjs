// Headless Chromium against the media node's lean browser leg (media_node::leg::BrowserLeg:
// ICE-lite + DTLS-SRTP + RTCP) over real UDP on loopback: the page offers audio (the fake
// microphone), the Rust test answers and echoes the browser's RTP back, and this checks that the
// echo arrives (inbound RTP with audio energy, from getStats).
//
//   LEAN_URL=http://127.0.0.1:PORT node tests/lean-leg.spec.mjs
//
// Run by tests/tests/lean_leg_in_browser.rs. Exits non-zero on failure or after 45 s.
import { launchForCalls } from './chromium.mjs';

const url = process.env.LEAN_URL;
if (!url) {
  console.error('lean leg test: set LEAN_URL');
  process.exit(2);
}
setTimeout(() => {
  console.error('lean leg test: still running after 45 s, giving up');
  process.exit(1);
}, 45_000).unref();

const browser = await launchForCalls(['--disable-features=WebRtcHideLocalIpsWithMdns']);
let code = 0;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => console.log(`page: ${m.text()}`));
  await page.goto(url + '/');
  // Offer, POST it, apply the answer.
  const offered = await page.evaluate(async () => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    window.pc = pc;
    pc.addEventListener('connectionstatechange', () => console.log(`connectionState ${pc.connectionState}`));
    pc.addEventListener('iceconnectionstatechange', () => console.log(`iceConnectionState ${pc.iceConnectionState}`));
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    // Play what comes back, so that audio energy is measured like in a call.
    pc.addEventListener('track', (e) => {
      const audio = new Audio();
      audio.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      audio.play().catch(() => {});
    });
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const done = () => pc.iceGatheringState === 'complete' && resolve();
        pc.addEventListener('icegatheringstatechange', done);
        setTimeout(resolve, 5000);
      });
    }
    const offer = pc.localDescription.sdp;
    const res = await fetch('/offer', { method: 'POST', body: offer, headers: { 'content-type': 'application/sdp' } });
    if (!res.ok) throw new Error(`POST /offer: ${res.status} ${await res.text()}`);
    const answer = await res.text();
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    return { offer, answer };
  });
  const candidates = offered.offer.split('\r\n').filter((l) => l.startsWith('a=candidate'));
  console.log(`ok - offered (${candidates.length} candidates: ${candidates.join(' | ')}) and applied the answer`);

  const state = await page.evaluate(async () => {
    const end = Date.now() + 15_000;
    while (Date.now() < end && window.pc.connectionState !== 'connected') {
      if (window.pc.connectionState === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return { connection: window.pc.connectionState, ice: window.pc.iceConnectionState };
  });
  if (state.connection !== 'connected') throw new Error(`not connected: ${JSON.stringify(state)}`);
  console.log('ok - connected');

  // Past the leg's first RTCP report (5 s after the handshake), so that Chromium has read it.
  await page.waitForTimeout(6500);
  const stats = await page.evaluate(async () => {
    const report = await window.pc.getStats();
    const out = { packets: 0, energy: 0, srtpCipher: null, dtlsCipher: null, tlsVersion: null, dtlsState: null, rtt: null, remoteInbound: false };
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        out.packets += r.packetsReceived ?? 0;
        out.energy += r.totalAudioEnergy ?? 0;
      }
      if (r.type === 'transport') {
        out.srtpCipher = r.srtpCipher ?? null;
        out.dtlsCipher = r.dtlsCipher ?? null;
        out.tlsVersion = r.tlsVersion ?? null;
        out.dtlsState = r.dtlsState ?? null;
      }
      if (r.type === 'remote-inbound-rtp' && r.kind === 'audio') {
        out.remoteInbound = true;
        out.rtt = r.roundTripTime ?? null;
      }
    });
    return out;
  });
  console.log(`stats ${JSON.stringify(stats)}`);
  console.log(`srtpCipher ${stats.srtpCipher}`);
  if (!(stats.packets > 100 && stats.energy > 0)) {
    throw new Error(`no echoed audio: ${JSON.stringify(stats)}`);
  }
  if (!stats.remoteInbound) throw new Error(`no remote-inbound-rtp: the leg's RTCP report did not reach Chromium`);
  console.log(`ok - the lean leg echoed audio back: ${stats.packets} packets, energy ${stats.energy.toFixed(4)}`);
  await page.evaluate(() => window.pc.close());
} catch (e) {
  console.error(`not ok - ${e.message ?? e}`);
  code = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(code);
