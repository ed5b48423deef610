// Operator changes reach the real phone: against the real stack, change the tenant's flags and menu
// through the operator API, reload, and see them; also prints how long the first render took.
//
//   PHONE_URL=http://localhost:8787 ADMIN_URL=http://127.0.0.1:8787 OPERATOR_TOKEN=... TENANT=localhost \
//   node tests/config.spec.mjs
//
// Run by tests/tests/phone_in_browser.rs. Exits non-zero on failure or after 90 s.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const { PHONE_URL: url, ADMIN_URL: admin, OPERATOR_TOKEN: token, TENANT: tenant } = process.env;
if (!url || !admin || !token || !tenant) {
  console.error('config test: set PHONE_URL, ADMIN_URL, OPERATOR_TOKEN and TENANT');
  process.exit(2);
}
setTimeout(() => {
  console.error('config test: still running after 90 s, giving up');
  process.exit(1);
}, 90_000).unref();

async function patch(body) {
  const resp = await fetch(`${admin}/admin/tenants/${tenant}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify(body),
  });
  assert.equal(resp.status, 200, `PATCH answered ${resp.status}: ${await resp.text()}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  timeout: 30_000,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let code = 0;
try {
  const context = await browser.newContext({ serviceWorkers: 'block', viewport: { width: 390, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);

  const started = Date.now();
  await page.goto(url + '/');
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
  console.log(`first render: sign-in form visible ${Date.now() - started} ms after navigation (first contentful paint ${fcp.toFixed(0)} ms)`);
  assert.equal(await page.getByRole('button', { name: 'Sign up', exact: true }).count(), 0, 'Sign up shown without flags.register');

  // Installable as an app: Chromium's own checks of the manifest, icons and service worker.
  const cdp = await context.newCDPSession(page);
  // Playwright's contexts are incognito-like, which Chromium reports as "in-incognito"; anything else
  // (manifest, icons, start_url) would be the phone's fault.
  const ours = (errors) => errors.filter((e) => e.errorId !== 'in-incognito');
  let installErrors = [];
  for (let i = 0; i < 20; i++) {
    ({ installabilityErrors: installErrors } = await cdp.send('Page.getInstallabilityErrors'));
    if (ours(installErrors).length === 0) break;
    await page.waitForTimeout(250);
  }
  assert.deepEqual(ours(installErrors), [], `not installable: ${JSON.stringify(installErrors)}`);
  console.log(`ok - installable (Chromium's installability check: ${JSON.stringify(installErrors)})`);

  await patch({
    brand_name: 'Renamed Phone',
    flags: { register: true },
    menu: [
      { title: 'Dialpad', icon: 'mdi-dialpad', position: 1, page: 'dialpad' },
      { title: 'Help', icon: 'mdi-help-circle', position: 2, template: '<h2>How to call</h2><p>Dial a number.</p>' },
    ],
  });
  await page.reload();
  await page.getByRole('button', { name: 'Sign up', exact: true }).waitFor();
  assert.equal(await page.title(), 'Renamed Phone');
  console.log('ok - brand_name and flags.register changed through the operator API show after reload');

  await page.getByLabel('Username', { exact: true }).fill('1001');
  await page.getByLabel('Password', { exact: true }).fill('demo-1001');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const nav = page.getByRole('navigation', { name: 'Main menu' });
  await nav.getByRole('link', { name: 'Help' }).click();
  await page.getByRole('heading', { name: 'How to call' }).waitFor();
  console.log('ok - a template menu item added through the operator API shows after reload');

  await patch({ flags: { display_balance: true, register: false } });
  await page.reload();
  await page.getByTestId('balance').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Sign up', exact: true }).count(), 0);
  console.log('ok - display_balance on and register off after another change');
} catch (err) {
  console.log(`not ok - ${String(err?.stack ?? err).split('\n').slice(0, 6).join('\n  ')}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
