// The echo test (*43) in the real phone against the real stack: sign in, dial *43, and check that
// audio comes back (inbound RTP with audio energy, from getStats), then hang up.
//
//   PHONE_URL=http://localhost:8787 PHONE_USERS=1001:demo-1001 node tests/echo.spec.mjs
//
// Run by tests/tests/phone_in_browser.rs with a media node. Exits non-zero on failure or after 90 s.
import { launchForCalls } from './chromium.mjs';

const url = process.env.PHONE_URL;
const [user, password] = (process.env.PHONE_USERS ?? '').split(',')[0].split(':');
if (!url || !user) {
  console.error('echo test: set PHONE_URL and PHONE_USERS=user:password');
  process.exit(2);
}
setTimeout(() => {
  console.error('echo test: still running after 90 s, giving up');
  process.exit(1);
}, 90_000).unref();

const browser = await launchForCalls();
let code = 0;
try {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  // Keep every peer connection the phone makes, to read its stats.
  await context.addInitScript(() => {
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
  await page.goto(url + '/');
  await page.getByLabel('Username', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Registered' }).first().waitFor();
  console.log(`ok - ${user} is Registered`);
  await page.getByRole('textbox', { name: 'Number', exact: true }).fill('*43');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  await page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
  const inbound = () =>
    page.evaluate(async () => {
      let packets = 0;
      let energy = 0;
      for (const pc of window.__pcs) {
        const stats = await pc.getStats();
        stats.forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'audio') {
            packets += r.packetsReceived ?? 0;
            energy += r.totalAudioEnergy ?? 0;
          }
        });
      }
      return { packets, energy };
    });
  let seen = { packets: 0, energy: 0 };
  const end = Date.now() + 20_000;
  while (Date.now() < end && !(seen.packets > 100 && seen.energy > 0)) {
    await page.waitForTimeout(500);
    seen = await inbound();
  }
  if (!(seen.packets > 100 && seen.energy > 0)) {
    throw new Error(`no echoed audio: ${JSON.stringify(seen)}`);
  }
  console.log(`ok - *43 echoed audio back: ${seen.packets} packets, energy ${seen.energy.toFixed(4)}`);
  await page.getByRole('button', { name: 'Hang up', exact: true }).click();
  await page.getByRole('button', { name: 'Call', exact: true }).waitFor();
  console.log('ok - hung up');
} catch (err) {
  console.log(`not ok - ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n  ')}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
