// UI tests of the built phone (dist/) in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core; no browser download). No Worker and no SIP edge needed: tests/server.mjs serves dist/
// and fixture answers for /api/config and /manifest.webmanifest.
//
//   npm run build && npm test          (or: node tests/ui.spec.mjs [NAME-FILTER])
//
// Prints one line per test and last `N passed, N failed`; exits non-zero on any failure or when the
// whole run takes longer than 3 minutes. Screenshots go to test-results/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { fixtureConfig, startServer } from './server.mjs';
import { FakeSip } from './fake-sip.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const results = join(here, '..', 'test-results');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const RUN_LIMIT_MS = 180_000;
const filter = process.argv[2] ?? '';

if (!existsSync(join(here, '..', 'dist', 'index.html'))) {
  console.error('ui tests: dist/index.html is missing: run `npm run build` first');
  process.exit(1);
}
if (!existsSync(CHROMIUM)) {
  console.error(`ui tests: no Chromium at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (or set CHROMIUM_PATH)`);
  process.exit(1);
}
mkdirSync(results, { recursive: true });

const watchdog = setTimeout(() => {
  console.error(`ui tests: still running after ${RUN_LIMIT_MS / 1000} s, giving up`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, RUN_LIMIT_MS);
watchdog.unref();

// The flags this machine needs (Playwright makes a fresh --user-data-dir itself and adds --headless).
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 });
let server = await startServer();
let passed = 0;
let failed = 0;

/** Polls `fn` until it returns a truthy value (or throws its last error after `ms`). */
async function until(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw last ?? new Error(`timed out waiting for ${what}`);
}

async function openPhone({ flags = {}, patch = {}, width = 360, height = 740, serviceWorkers = 'block' } = {}) {
  server.setConfig(await fixtureConfig({ ...patch, flags }));
  const context = await browser.newContext({ viewport: { width, height }, serviceWorkers });
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(server.url + '/');
  await page.getByRole('status').first().waitFor();
  await until(async () => (await page.locator('.boot').count()) === 0, 8000, 'the app to start');
  return { context, page, errors };
}

async function signIn(page, username = '1001', password = 'not-the-real-one') {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('textbox', { name: 'Number', exact: true }).waitFor();
}

async function statusText(page) {
  return (await page.getByRole('status').textContent()).trim();
}

async function test(name, fn) {
  if (filter && !name.includes(filter)) return;
  const started = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`not ok - ${name}: ${err?.stack ?? err}`);
  }
}

// ---------------------------------------------------------------------------------------------------

await test('sign-in screen has the accessible names and the brand', async () => {
  for (const [width, height] of [[360, 740], [1280, 800]]) {
    const { context, page, errors } = await openPhone({ width, height });
    await page.getByLabel('Username', { exact: true }).waitFor();
    await page.getByLabel('Password', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign up', exact: true }).count(), 0, 'Sign up hidden without flags.register');
    assert.equal(await statusText(page), 'Signed out');
    assert.equal(await page.title(), 'Demo Phone');
    assert.match(await page.getByRole('heading', { level: 2 }).textContent(), /Demo Phone/);
    const manifest = await page.locator('link[rel="manifest"]').getAttribute('href');
    assert.equal(manifest, '/manifest.webmanifest');
    const viewport = await page.locator('meta[name="viewport"]').getAttribute('content');
    assert.doesNotMatch(viewport, /user-scalable\s*=\s*no|maximum-scale/, 'zoom must stay allowed');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${width} px (overflow ${overflow})`);
    await page.screenshot({ path: join(results, `signin-${width}.png`) });
    assert.deepEqual(errors, []);
    await context.close();
  }
});

await test('sign-in works from the keyboard', async () => {
  const { context, page } = await openPhone();
  await page.getByLabel('Username', { exact: true }).focus();
  await page.keyboard.type('1001');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
  await page.keyboard.type('secret');
  await page.keyboard.press('Enter');
  await page.getByRole('textbox', { name: 'Number', exact: true }).waitFor();
  await context.close();
});

await test('register flag shows Sign up, which says plainly that it is not available yet', async () => {
  const { context, page } = await openPhone({ flags: { register: true } });
  const signUp = page.getByRole('button', { name: 'Sign up', exact: true });
  await signUp.waitFor();
  await signUp.click();
  await until(async () => /isn't available yet/.test(await page.locator('.form-message').textContent()), 3000, 'the sign-up message');
  await context.close();
});

await test('after sign-in: dialpad, keys, Call, and the status is not Registered without the SIP edge', async () => {
  for (const [width, height] of [[360, 740], [1280, 800]]) {
    const { context, page, errors } = await openPhone({ width, height });
    await signIn(page);
    const number = page.getByRole('textbox', { name: 'Number', exact: true });
    for (const key of ['1', '0', '0', '2']) await page.getByRole('button', { name: key, exact: true }).click();
    assert.equal(await number.inputValue(), '1002');
    await page.getByRole('button', { name: 'Delete last digit' }).click();
    assert.equal(await number.inputValue(), '100');
    await page.getByRole('button', { name: 'Call', exact: true }).waitFor();
    await until(async () => /Connecting|Reconnecting|Offline/.test(await statusText(page)), 8000, 'a connecting status');
    assert.notEqual(await statusText(page), 'Registered');
    // Calling while not registered says why instead of failing silently.
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    await until(async () => /not registered/.test(await page.locator('.toast').textContent()), 3000, 'the not-registered notice');
    await number.fill('');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${width} px`);
    await page.screenshot({ path: join(results, `dialpad-${width}.png`) });
    assert.deepEqual(errors, []);
    await context.close();
  }
});

await test('side menu: brand, username, version id, Sign out; left by default', async () => {
  const { context, page } = await openPhone();
  await signIn(page);
  await page.getByRole('button', { name: 'Menu', exact: true }).click();
  const side = page.getByRole('dialog', { name: 'Side menu' });
  await side.waitFor();
  assert.match(await side.textContent(), /Demo Phone/);
  assert.equal(await side.getByTestId('side-username').textContent(), '1001');
  assert.match(await side.getByTestId('version-id').textContent(), /0b7e4c1a-5f7d-4c59-9a43-1a2b3c4d5e6f/);
  const box = await side.boundingBox();
  assert.ok(box.x <= 1, `side menu on the left (x=${box.x})`);
  await page.screenshot({ path: join(results, 'side-menu-360.png') });
  await page.keyboard.press('Escape');
  await until(async () => !(await side.isVisible()), 3000, 'the side menu to close');
  await page.getByRole('button', { name: 'Menu', exact: true }).click();
  await side.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  assert.equal(await statusText(page), 'Signed out');
  await context.close();
});

await test('flags: menu_right puts the side menu on the right, hide_uuid hides the version id', async () => {
  const { context, page } = await openPhone({ flags: { menu_right: true, hide_uuid: true } });
  await signIn(page);
  await page.getByRole('button', { name: 'Menu', exact: true }).click();
  const side = page.getByRole('dialog', { name: 'Side menu' });
  await side.waitFor();
  const box = await side.boundingBox();
  assert.ok(Math.abs(box.x + box.width - 360) <= 1, `side menu on the right (x=${box.x}, w=${box.width})`);
  assert.equal(await side.getByTestId('version-id').count(), 0);
  assert.doesNotMatch(await side.textContent(), /0b7e4c1a/);
  await context.close();
});

await test('flags: display_balance shows a balance in the header, off hides it', async () => {
  const on = await openPhone({ flags: { display_balance: true } });
  await signIn(on.page);
  assert.match(await on.page.getByTestId('balance').textContent(), /Balance\s*—/);
  await on.context.close();
  const off = await openPhone();
  await signIn(off.page);
  assert.equal(await off.page.getByTestId('balance').count(), 0);
  await off.context.close();
});

await test('flags: username_as_title sets the page title to the username after sign-in', async () => {
  const on = await openPhone({ flags: { username_as_title: true } });
  assert.equal(await on.page.title(), 'Demo Phone');
  await signIn(on.page, '1002');
  await until(async () => (await on.page.title()) === '1002', 3000, 'title = username');
  await on.context.close();
  const off = await openPhone();
  await signIn(off.page, '1002');
  assert.equal(await off.page.title(), 'Demo Phone');
  await off.context.close();
});

await test('bottom menu: ordered by position, disabled hidden, templates rendered, NO-CONTAINER frameless', async () => {
  const menu = [
    { title: 'Shop', icon: 'mdi-cart', position: 3, template: '<!-- NO-CONTAINER --><iframe title="Shop frame" srcdoc="<p>shop</p>"></iframe>' },
    { title: 'Hidden', icon: 'mdi-star', position: 'disabled', page: 'history' },
    { title: 'Keys', icon: 'mdi-dialpad', position: 1, page: 'dialpad' },
    { title: 'Help', icon: 'mdi-no-such-icon', position: 2, template: '<h3>How to call</h3><p>Dial the number.</p>' },
  ];
  const { context, page } = await openPhone({ patch: { menu } });
  await signIn(page);
  const nav = page.getByRole('navigation', { name: 'Main menu' });
  const titles = (await nav.locator('.nav-title').allTextContents()).map((t) => t.trim());
  assert.deepEqual(titles, ['Keys', 'Help', 'Shop']);
  assert.equal(await nav.getByRole('link', { name: 'Keys' }).getAttribute('aria-current'), 'page');
  // Each item has an icon (unknown names get the generic one).
  assert.equal(await nav.locator('svg path').count(), 3);

  await nav.getByRole('link', { name: 'Help' }).click();
  await page.getByRole('heading', { name: 'How to call' }).waitFor();
  assert.equal(await page.locator('main').evaluate((m) => m.classList.contains('frameless')), false);
  assert.equal(await page.getByTestId('template-page').evaluate((t) => t.classList.contains('card')), true);

  await nav.getByRole('link', { name: 'Shop' }).click();
  const frame = page.locator('iframe[title="Shop frame"]');
  await frame.waitFor();
  assert.equal(await page.locator('main').evaluate((m) => m.classList.contains('frameless')), true);
  const mainBox = await page.locator('main').boundingBox();
  const frameBox = await frame.boundingBox();
  assert.ok(Math.abs(mainBox.width - frameBox.width) <= 1 && Math.abs(mainBox.height - frameBox.height) <= 1,
    `frameless page fills the space (main ${JSON.stringify(mainBox)}, iframe ${JSON.stringify(frameBox)})`);
  await page.screenshot({ path: join(results, 'frameless-360.png') });
  await context.close();
});

await test('*#0*# on the dialpad toggles debug mode, shown and remembered', async () => {
  const { context, page } = await openPhone();
  await signIn(page);
  const number = page.getByRole('textbox', { name: 'Number', exact: true });
  const badge = page.locator('.debug-badge');
  assert.equal(await badge.isVisible(), false);
  await number.click();
  await page.keyboard.type('*#0*#');
  await badge.waitFor({ state: 'visible' });
  assert.equal(await number.inputValue(), '');
  assert.equal(await page.evaluate(() => localStorage.getItem('webphone.debug')), 'true');
  // Remembered across reloads (the account is not: it is saved only after a successful REGISTER).
  await page.reload();
  await signIn(page);
  await badge.waitFor({ state: 'visible' });
  await page.goto(server.url + '/#settings');
  await until(async () => (await page.getByTestId('debug-state').textContent()) === 'On', 3000, 'settings to show debug On');
  await page.goto(server.url + '/#dialpad');
  // The keypad buttons work too.
  for (const key of ['*', '#', '0', '*', '#']) await page.getByRole('button', { name: key, exact: true }).click();
  await badge.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => localStorage.getItem('webphone.debug')), null);
  await context.close();
});

await test('settings are read-only unless edit_settings', async () => {
  const ro = await openPhone();
  await signIn(ro.page);
  await ro.page.goto(server.url + '/#settings');
  const ringtone = ro.page.getByLabel('Ringtone');
  await ringtone.waitFor();
  assert.equal(await ringtone.isDisabled(), true);
  await ro.context.close();
  const rw = await openPhone({ flags: { edit_settings: true } });
  await signIn(rw.page);
  await rw.page.goto(server.url + '/#settings');
  await rw.page.getByLabel('Ringtone').selectOption('digital');
  const saved = await rw.page.evaluate(() => JSON.parse(localStorage.getItem('webphone.settings')).ringtone);
  assert.equal(saved, 'digital');
  await rw.context.close();
});

await test('history: calls on this device are listed with redial', async () => {
  const { context, page } = await openPhone();
  await page.evaluate(() =>
    localStorage.setItem('webphone.history', JSON.stringify([
      { number: '1002', direction: 'out', answered: true, at: Date.now() - 60000, duration: 61000 },
      { number: '1003', direction: 'in', answered: false, at: Date.now() - 120000, duration: 0 },
    ])),
  );
  await signIn(page);
  await page.getByRole('navigation', { name: 'Main menu' }).getByRole('link', { name: 'History' }).click();
  await page.getByRole('button', { name: 'Redial 1002' }).waitFor();
  assert.match(await page.locator('.history-list li').nth(1).textContent(), /Missed/);
  await context.close();
});

// ---- with a fake SIP edge (tests/fake-sip.mjs) -------------------------------------------------------

/** Opens the phone against a fresh fake SIP edge and signs in as 1001. */
async function openRegistered({ flags = {}, width = 360, height = 740 } = {}) {
  const sip = new FakeSip();
  server.sip = sip;
  const phone = await openPhone({ flags, width, height, patch: { websocket_url: `ws://127.0.0.1:${server.port}/ws` } });
  await signIn(phone.page, '1001', 'demo-1001');
  await until(async () => (await statusText(phone.page)) === 'Registered', 8000, 'status Registered');
  return { ...phone, sip };
}

const pressed = (locator) => locator.getAttribute('aria-pressed');

await test('SIP: a wrong password goes back to sign-in and says so', async () => {
  server.sip = new FakeSip();
  const { context, page } = await openPhone({ patch: { websocket_url: `ws://127.0.0.1:${server.port}/ws` } });
  await page.getByLabel('Username', { exact: true }).fill('1001');
  await page.getByLabel('Password', { exact: true }).fill('wrong');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await until(async () => /Wrong username or password/.test(await page.getByRole('alert').textContent()), 5000, 'the error');
  assert.equal(await page.evaluate(() => localStorage.getItem('webphone.account')), null);
  await context.close();
});

await test('SIP: Registered; the password is not stored (HA1 only) and a reload registers again', async () => {
  const { context, page, sip, errors } = await openRegistered();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  assert.doesNotMatch(stored, /demo-1001/, 'the password must not be stored');
  const account = await page.evaluate(() => JSON.parse(localStorage.getItem('webphone.account')));
  assert.equal(account.username, '1001');
  assert.match(account.ha1, /^[0-9a-f]{32}$/);
  const before = sip.registers;
  await page.reload();
  await page.getByRole('textbox', { name: 'Number', exact: true }).waitFor();
  await until(async () => (await statusText(page)) === 'Registered' && sip.registers > before, 8000, 'registered again');
  // The socket drops: the phone says so and comes back by itself.
  sip.dropAll();
  await until(async () => /Reconnecting|Connecting|Registering/.test(await statusText(page)), 5000, 'status Reconnecting');
  await until(async () => (await statusText(page)) === 'Registered', 15000, 'registered after reconnecting');
  assert.deepEqual(errors, []);
  await context.close();
});

await test('SIP: debug mode logs every SIP message in and out to the console, digest responses redacted', async () => {
  const sip = new FakeSip();
  server.sip = sip;
  const { context, page } = await openPhone({ patch: { websocket_url: `ws://127.0.0.1:${server.port}/ws` } });
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.evaluate(() => localStorage.setItem('webphone.debug', 'true'));
  await page.reload();
  await signIn(page, '1001', 'demo-1001');
  await until(async () => (await statusText(page)) === 'Registered', 8000, 'status Registered');
  const all = logs.join('\n');
  assert.match(all, /SIP → out.*REGISTER sip:localhost SIP\/2\.0/);
  assert.match(all, /SIP ← in.*SIP\/2\.0 401 Unauthorized/);
  assert.match(all, /SIP ← in.*SIP\/2\.0 200 OK/);
  assert.match(all, /Authorization: Digest .*response="…"/);
  assert.doesNotMatch(all, /demo-1001/);
  await context.close();
});

await test('SIP: outgoing call with Mute, Hold, Keypad, timer and Hang up; history records it', async () => {
  const { context, page, sip, errors } = await openRegistered();
  await page.getByRole('textbox', { name: 'Number', exact: true }).fill('1002');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  const hangup = page.getByRole('button', { name: 'Hang up', exact: true });
  await hangup.waitFor();
  await until(() => sip.seen('INVITE').length === 1, 5000, 'the INVITE');
  assert.match(sip.seen('INVITE')[0].uri, /^sip:1002@localhost/);
  await until(async () => /^\d+:\d\d/.test(await page.locator('.call-state').textContent()), 8000, 'the call timer');
  const mute = page.getByRole('button', { name: 'Mute', exact: true });
  await mute.click();
  await until(async () => (await pressed(mute)) === 'true', 3000, 'Mute pressed');
  await mute.click();
  await until(async () => (await pressed(mute)) === 'false', 3000, 'Mute released');
  const hold = page.getByRole('button', { name: 'Hold', exact: true });
  await hold.click();
  await until(async () => (await pressed(hold)) === 'true', 5000, 'Hold pressed');
  await until(() => sip.seen('INVITE').length === 2 && /a=sendonly/.test(sip.seen('INVITE')[1].body), 5000, 'the hold re-INVITE (sendonly)');
  await hold.click();
  await until(async () => (await pressed(hold)) === 'false', 5000, 'Hold released');
  await until(() => sip.seen('INVITE').length === 3 && /a=sendrecv/.test(sip.seen('INVITE')[2].body), 5000, 'the unhold re-INVITE');
  const keypadButton = page.getByRole('button', { name: 'Keypad', exact: true });
  await keypadButton.click();
  assert.equal(await keypadButton.getAttribute('aria-expanded'), 'true');
  await page.getByRole('group', { name: 'Keypad tones' }).waitFor();
  await page.getByRole('button', { name: 'Audio' }).click();
  await page.getByLabel('Microphone').waitFor();
  await page.screenshot({ path: join(results, 'in-call-360.png') });
  // The dialpad behind the call is out of reach (inert) while the call screen is up.
  assert.equal(await page.locator('main').evaluate((m) => m.inert), true);
  await hangup.click();
  await until(() => sip.seen('BYE').length === 1, 5000, 'BYE');
  await page.locator('.call-layer').waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(await page.locator('main').evaluate((m) => m.inert), false);
  const history = await page.evaluate(() => JSON.parse(localStorage.getItem('webphone.history')));
  assert.equal(history[0].number, '1002');
  assert.equal(history[0].answered, true);
  assert.deepEqual(errors, []);
  await context.close();
});

await test('SIP: a network change during a call renegotiates with an ICE restart', async () => {
  const { context, page, sip } = await openRegistered();
  await page.getByRole('textbox', { name: 'Number', exact: true }).fill('1002');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  await until(async () => /^\d+:\d\d/.test(await page.locator('.call-state').textContent()), 8000, 'the call timer');
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  const ufrag = (m) => /a=ice-ufrag:(\S+)/.exec(m.body)?.[1];
  await until(() => sip.seen('INVITE').length >= 2, 5000, 'the re-INVITE');
  const [first, second] = sip.seen('INVITE');
  assert.ok(ufrag(first) && ufrag(second) && ufrag(first) !== ufrag(second), 'new ICE credentials in the re-INVITE');
  await until(async () => /reconnecting the call/.test(await page.locator('.call-notice').textContent()), 3000, 'the notice');
  await page.getByRole('button', { name: 'Hang up', exact: true }).click();
  await until(() => sip.seen('BYE').length === 1, 5000, 'BYE');
  await context.close();
});

await test('SIP: busy callee ends the call with a clear message', async () => {
  const { context, page } = await openRegistered();
  await page.getByRole('textbox', { name: 'Number', exact: true }).fill('486');
  await page.keyboard.press('Enter');
  await until(async () => /Busy/.test(await page.locator('.toast').textContent()), 5000, 'Busy');
  await context.close();
});

await test('SIP: blind transfer sends REFER and ends the call once it is taken over', async () => {
  const { context, page, sip } = await openRegistered();
  await page.getByRole('textbox', { name: 'Number', exact: true }).fill('1002');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  await until(async () => /^\d+:\d\d/.test(await page.locator('.call-state').textContent()), 8000, 'the call timer');
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await page.getByLabel('Transfer to').fill('1003');
  await page.getByRole('button', { name: 'Transfer call' }).click();
  await until(() => sip.seen('REFER').length === 1, 5000, 'REFER');
  assert.match(sip.seen('REFER')[0].get('refer-to'), /sip:1003@localhost/);
  await until(() => sip.seen('BYE').length === 1, 8000, 'BYE after the transfer');
  await context.close();
});

await test('SIP: incoming call shows Answer and Decline; Decline rejects, Answer connects, far-end hangup closes', async () => {
  const { context, page, sip, errors } = await openRegistered();
  sip.invite('1001', { from: '1002', name: 'Test Caller' });
  const answer = page.getByRole('button', { name: 'Answer', exact: true });
  await answer.waitFor();
  await page.getByRole('button', { name: 'Decline', exact: true }).waitFor();
  assert.match(await page.locator('.call-who').textContent(), /Test Caller/);
  assert.match(await page.title(), /Incoming call/);
  await page.screenshot({ path: join(results, 'incoming-360.png') });
  await page.getByRole('button', { name: 'Decline', exact: true }).click();
  await until(() => sip.seen(603).length === 1, 5000, '603 Decline');
  await page.locator('.call-layer').waitFor({ state: 'hidden', timeout: 5000 });

  const callId = sip.invite('1001', { from: '1002', name: 'Test Caller' });
  await answer.waitFor();
  await answer.click();
  await page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
  await until(() => sip.seen(200).some((m) => m.cseq().method === 'INVITE'), 5000, '200 OK to the INVITE');
  await until(async () => /^\d+:\d\d/.test(await page.locator('.call-state').textContent()), 8000, 'the call timer');
  sip.bye(callId);
  await page.locator('.call-layer').waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(await page.title(), 'Demo Phone');
  assert.deepEqual(errors, []);
  await context.close();
});

await test('SIP: auto_answer answers incoming calls at once', async () => {
  const { context, page, sip } = await openRegistered({ flags: { auto_answer: true } });
  sip.invite('1001', { from: '1002' });
  await until(() => sip.seen(200).some((m) => m.cseq().method === 'INVITE'), 5000, 'the call answered');
  await page.getByRole('button', { name: 'Hang up', exact: true }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Answer', exact: true }).count(), 0);
  await page.getByRole('button', { name: 'Hang up', exact: true }).click();
  await until(() => sip.seen('BYE').length === 1, 5000, 'BYE');
  await context.close();
});

await test('offline: with the server stopped, a second load shows the app and says it is offline', async () => {
  const { context, page } = await openPhone({ serviceWorkers: 'allow' });
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await until(() => page.evaluate(() => navigator.serviceWorker.controller !== null), 10000, 'the service worker to control the page');
  await page.getByLabel('Username', { exact: true }).waitFor();
  const port = server.port;
  await server.close();
  try {
    await page.reload();
    await page.getByLabel('Username', { exact: true }).waitFor();
    await until(async () => (await statusText(page)) === 'Offline', 5000, 'status Offline');
    assert.match(await page.locator('.notice').first().textContent(), /offline/i);
    assert.equal(await page.title(), 'Demo Phone');
    await page.screenshot({ path: join(results, 'offline-360.png') });
  } finally {
    server = await startServer({ port });
    server.sip = null;
    await context.close();
  }
});

await browser.close();
await server.close();
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
