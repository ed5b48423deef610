// A call between the real phone and the tenant's upstream, bridged by a media node. Outgoing (DIAL set):
// sign in, dial DIAL, wait until the call is answered. Incoming (DIAL unset): sign in, wait for the
// upstream's call ("Answer"), answer it. Then let audio flow, press the DTMF keys on the in-call
// "Keypad" (if DTMF is set), read what the browser received (getStats inbound-rtp, and the remote audio's
// spectrum through an AnalyserNode), print it as one JSON line starting with "STATS ", and end the call:
// hang up (outgoing) or wait for the far end to hang up (incoming: "Call ended", then the dialpad).
//
//   PHONE_URL=http://localhost:8787 PHONE_USERS=1001:demo-1001 DIAL=5551234 DTMF=15# \
//   FAKE_AUDIO=/abs/tone.wav SIP_LOG=/abs/sip.log node tests/bridge.spec.mjs
//
// FAKE_AUDIO (optional) is a 16-bit PCM WAV played as the microphone; SIP_LOG (optional) receives
// the phone's SIP message log (its debug mode). Run by tests/tests/bridge_to_upstream.rs, which
// checks the other side of the call (the upstream's RTP). Exits non-zero on failure or after 100 s.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const url = process.env.PHONE_URL;
const [user, password] = (process.env.PHONE_USERS ?? '').split(',')[0].split(':');
const dial = process.env.DIAL;
const dtmf = process.env.DTMF ?? '';
const talkMs = Number(process.env.TALK_MS ?? 3000);
if (!url || !user) {
  console.error('bridge test: set PHONE_URL and PHONE_USERS=user:password (and DIAL=number for an outgoing call)');
  process.exit(2);
}
setTimeout(() => {
  console.error('bridge test: still running after 100 s, giving up');
  process.exit(1);
}, 100_000).unref();

const args = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream', '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection',
];
if (process.env.FAKE_AUDIO) args.push(`--use-file-for-fake-audio-capture=${process.env.FAKE_AUDIO}`);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  timeout: 30_000,
  args,
});

const sipLog = [];
const step = (name) => console.log(`ok - ${name}`);

// getStats of every peer connection the phone made: what arrived and what went out.
async function stats(page) {
  return page.evaluate(async () => {
    const out = { packetsReceived: 0, totalAudioEnergy: 0, audioLevel: 0, packetsLost: 0, packetsSent: 0, codecs: [] };
    for (const pc of window.__pcs) {
      const report = await pc.getStats();
      report.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          out.packetsReceived += r.packetsReceived ?? 0;
          out.totalAudioEnergy += r.totalAudioEnergy ?? 0;
          out.audioLevel = Math.max(out.audioLevel, r.audioLevel ?? 0);
          out.packetsLost += r.packetsLost ?? 0;
          const codec = r.codecId && report.get(r.codecId);
          if (codec) out.codecs.push(`in:${codec.mimeType}/${codec.clockRate} pt ${codec.payloadType}`);
        }
        if (r.type === 'outbound-rtp' && r.kind === 'audio') {
          out.packetsSent += r.packetsSent ?? 0;
          const codec = r.codecId && report.get(r.codecId);
          if (codec) out.codecs.push(`out:${codec.mimeType}/${codec.clockRate} pt ${codec.payloadType}`);
        }
      });
    }
    return out;
  });
}

// The remote audio's spectrum for about `ms`: the strongest frequency, and the power at 440 Hz and
// 1 kHz relative to the average of the band, averaged over several looks.
async function spectrum(page, ms) {
  return page.evaluate(async (ms) => {
    const receivers = window.__pcs.flatMap((pc) => pc.getReceivers()).filter((r) => r.track?.kind === 'audio');
    if (!receivers.length) return { error: 'no audio receiver' };
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(new MediaStream([receivers[receivers.length - 1].track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const hz = ctx.sampleRate / analyser.fftSize;
    const at = (f) => {
      // The strongest bin within ±15 Hz (dB).
      let best = -Infinity;
      for (let i = Math.floor((f - 15) / hz); i <= Math.ceil((f + 15) / hz); i++) best = Math.max(best, bins[i]);
      return best;
    };
    const looks = [];
    const end = performance.now() + ms;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      analyser.getFloatFrequencyData(bins);
      let peak = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
      looks.push({ peakHz: peak * hz, db440: at(440), db1000: at(1000), db1500: at(1500), peakDb: bins[peak] });
    }
    await ctx.close();
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      sampleRate: ctx.sampleRate,
      looks: looks.length,
      peakHz: median(looks.map((l) => l.peakHz)),
      peakDb: median(looks.map((l) => l.peakDb)),
      db440: median(looks.map((l) => l.db440)),
      db1000: median(looks.map((l) => l.db1000)),
      db1500: median(looks.map((l) => l.db1500)),
      peakNear440: looks.filter((l) => Math.abs(l.peakHz - 440) < 20).length,
    };
  }, ms);
}

let code = 0;
try {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  // Keep every peer connection the phone makes, to read its stats; SIP messages go to the console.
  await context.addInitScript(() => {
    localStorage.setItem('webphone.debug', 'true');
    const Original = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Original(...args);
      window.__pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => sipLog.push(m.text()));
  page.on('pageerror', (err) => console.error(`page error: ${err.message}`));
  await page.goto(url + '/');
  await page.getByLabel('Username', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Registered' }).first().waitFor();
  step(`${user} is Registered`);

  if (dial) {
    await page.getByRole('textbox', { name: 'Number', exact: true }).fill(dial);
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    await page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
  } else {
    // The upstream calls shortly after the registration it accepted.
    await page.getByRole('button', { name: 'Answer', exact: true }).waitFor({ timeout: 30_000 });
    step('the phone rings');
    await page.getByRole('button', { name: 'Answer', exact: true }).click();
  }
  // The in-call timer shows 0:00 once the call is established.
  await page.getByRole('timer').filter({ hasText: /^\d+:\d\d/ }).waitFor({ timeout: 30_000 });
  step(dial ? `the call to ${dial} is answered` : 'the call is answered and established');

  await page.waitForTimeout(talkMs);
  const before = await stats(page);
  const heard = await spectrum(page, 1500);
  step(`heard: ${JSON.stringify(heard)}`);

  let sent = '';
  if (dtmf) {
    await page.getByRole('button', { name: 'Keypad', exact: true }).click();
    const keys = page.getByRole('group', { name: 'Keypad tones' });
    for (const key of dtmf) {
      await keys.getByRole('button', { name: key, exact: true }).click();
      // A tone lasts 120 ms with a 70 ms gap; let each finish before the next.
      await page.waitForTimeout(600);
    }
    sent = (await page.getByLabel('Tones sent').textContent()) ?? '';
    step(`pressed ${dtmf} on the Keypad, the phone shows "${sent}" sent`);
  }
  await page.waitForTimeout(1000);
  const after = await stats(page);
  console.log(`STATS ${JSON.stringify({ before, after, heard, dtmfShown: sent })}`);

  if (dial) {
    await page.getByRole('button', { name: 'Hang up', exact: true }).click();
    step('hung up');
  } else {
    await page.getByRole('timer').filter({ hasText: 'Call ended' }).waitFor({ timeout: 30_000 });
    step('the far end hung up ("Call ended")');
  }
  await page.getByRole('button', { name: 'Call', exact: true }).waitFor({ timeout: 15_000 });
  step('back on the dialpad');
} catch (err) {
  console.log(`not ok - ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n  ')}`);
  const status = await browser.contexts()[0]?.pages()[0]?.getByRole('status').allTextContents().catch(() => []);
  if (status) console.log(`status region: ${JSON.stringify(status)}`);
  console.log(`--- last console lines ---\n${sipLog.slice(-15).join('\n').slice(-5000)}`);
  code = 1;
} finally {
  if (process.env.SIP_LOG) writeFileSync(process.env.SIP_LOG, sipLog.join('\n'));
  await browser.close();
}
process.exit(code);
