// The phone against the real local stack (wrangler dev with the SIP edge): two browser contexts sign in
// as two accounts of the tenant at PHONE_URL, one calls the other, the other answers, audio flows
// between the browsers (WebRTC on loopback), hold and unhold, then hang up.
//
//   PHONE_URL=http://localhost:8787 PHONE_USERS=1001:demo-1001,1002:demo-1002 node tests/stack.spec.mjs
//
// Run by the Rust test tests/tests/phone_in_browser.rs, which starts the stack. Exits non-zero on any
// failure or after 150 s; screenshots go to test-results/stack-*.png.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { launchForCalls } from './chromium.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const results = join(here, '..', 'test-results');
mkdirSync(results, { recursive: true });
const url = process.env.PHONE_URL;
const users = (process.env.PHONE_USERS ?? '').split(',').map((u) => u.split(':'));
if (!url || users.length < 2) {
  console.error('stack test: set PHONE_URL and PHONE_USERS=user:password,user:password');
  process.exit(2);
}
setTimeout(() => {
  console.error('stack test: still running after 150 s, giving up');
  process.exit(1);
}, 150_000).unref();

const browser = await launchForCalls();

const logs = new Map();

async function phone(user, password) {
  const context = await browser.newContext({ viewport: { width: 390, height: 800 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (err) => console.error(`[${user}] page error: ${err.message}`));
  await page.goto(url + '/');
  await page.getByLabel('Username', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  // Every SIP message in and out (the phone's debug mode) goes to test-results/stack-<user>.log.
  await context.addInitScript(() => localStorage.setItem('webphone.debug', 'true'));
  const sipLog = [];
  logs.set(user, sipLog);
  page.on('console', (m) => sipLog.push(m.text()));
  try {
    await page.getByRole('status').filter({ hasText: 'Registered' }).first().waitFor();
  } catch (err) {
    const status = await page.getByRole('status').allTextContents();
    throw new Error(`${user} did not register; status: ${JSON.stringify(status)}`);
  }
  console.log(`ok - ${user} signed in and is Registered`);
  return { context, page };
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (err) {
    console.log(`not ok - ${name}\n  ${String(err?.stack ?? err).split('\n').join('\n  ')}`);
    throw err;
  }
}

let exitCode = 0;
try {
  const [[userA, passA], [userB, passB]] = users;
  const a = await phone(userA, passA);
  const b = await phone(userB, passB);

  await step(`${userA} calls ${userB}, who sees Answer and Decline`, async () => {
    await a.page.getByRole('textbox', { name: 'Number', exact: true }).fill(userB);
    await a.page.getByRole('button', { name: 'Call', exact: true }).click();
    await b.page.getByRole('button', { name: 'Answer', exact: true }).waitFor();
    await b.page.getByRole('button', { name: 'Decline', exact: true }).waitFor();
    await b.page.screenshot({ path: join(results, 'stack-incoming.png') });
  });

  await step(`${userB} answers and both are in the call`, async () => {
    await b.page.getByRole('button', { name: 'Answer', exact: true }).click();
    await a.page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
    await b.page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
    await a.page.getByRole('button', { name: 'Mute', exact: true }).waitFor();
    await a.page.waitForTimeout(1500);
    await a.page.screenshot({ path: join(results, 'stack-in-call.png') });
  });

  await step('hold and unhold go through the edge as re-INVITEs', async () => {
    // JsSIP refuses a second re-offer while the first is in flight (the phone then says "try again
    // in a moment"), so press again until the state flips, as a person would.
    const toggle = async (from, to) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const button = a.page.getByRole('button', { name: 'Hold', exact: true, pressed: from });
        if (await button.count()) await button.click();
        try {
          await a.page.getByRole('button', { name: 'Hold', exact: true, pressed: to }).waitFor({ timeout: 1000 });
          return;
        } catch {}
      }
      throw new Error(`Hold did not go from ${from} to ${to}`);
    };
    await toggle(false, true);
    // The far end sees the hold (its re-INVITE arrived through the edge).
    await b.page.getByText('The other side put the call on hold.').waitFor({ timeout: 15_000 });
    await toggle(true, false);
  });

  await step(`${userA} hangs up and both return to the dialpad`, async () => {
    await a.page.getByRole('button', { name: 'Hang up', exact: true }).click();
    await a.page.getByRole('button', { name: 'Call', exact: true }).waitFor();
    await b.page.getByRole('button', { name: 'Call', exact: true }).waitFor();
  });
  console.log('stack test: all passed');
} catch (err) {
  console.log(`not ok - ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n  ')}`);
  exitCode = 1;
} finally {
  for (const [user, lines] of logs) {
    writeFileSync(join(results, `stack-${user}.log`), lines.join('\n'));
    if (exitCode) console.log(`--- last console lines of ${user} ---\n${lines.slice(-12).join('\n').slice(-4000)}`);
  }
  await browser.close();
}
process.exit(exitCode);
