// Size budget of what the phone loads before it can show anything: the JS and CSS that dist/index.html
// references (entry module, modulepreloads, stylesheets), gzipped. Run after `vite build`.
// Fails (exit 1) over budget: initial JS 120 KB, CSS 20 KB (gzipped, 1 KB = 1024 bytes).
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const BUDGET = { js: 120 * 1024, css: 20 * 1024 };

let html;
try {
  html = readFileSync(join(dist, 'index.html'), 'utf8');
} catch {
  console.error('budget: dist/index.html is missing; run `npm run build` first');
  process.exit(1);
}

const refs = { js: new Set(), css: new Set() };
for (const m of html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)) refs.js.add(m[1]);
for (const m of html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g)) refs.js.add(m[1]);
for (const m of html.matchAll(/<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"/g)) refs.css.add(m[1]);

const gz = (path) => gzipSync(readFileSync(join(dist, path.replace(/^\//, ''))), { level: 9 }).length;
const kb = (n) => (n / 1024).toFixed(1) + ' KB';

let failed = false;
const totals = {};
for (const kind of ['js', 'css']) {
  const files = [...refs[kind]];
  const total = files.reduce((sum, f) => sum + gz(f), 0);
  totals[kind] = total;
  const ok = total <= BUDGET[kind];
  failed ||= !ok;
  console.log(
    `budget: initial ${kind.toUpperCase()} ${kb(total)} gzipped of ${kb(BUDGET[kind])} (${files.length} file${files.length === 1 ? '' : 's'}) ${ok ? 'ok' : 'OVER BUDGET'}`,
  );
}
// Lazy chunks (JsSIP and the call code, loaded at sign-in) for information.
const lazy = readdirSync(join(dist, 'assets'))
  .filter((f) => f.endsWith('.js') && !refs.js.has('/assets/' + f))
  .map((f) => ({ f, size: gz('assets/' + f) }));
for (const { f, size } of lazy) console.log(`budget: lazy ${f} ${kb(size)} gzipped (loaded at sign-in)`);
// A signed-in user loads the lazy chunks at start too: hold that to the same JS budget.
const signedIn = totals.js + lazy.reduce((sum, l) => sum + l.size, 0);
const signedInOk = signedIn <= BUDGET.js;
failed ||= !signedInOk;
console.log(`budget: signed-in start JS ${kb(signedIn)} gzipped of ${kb(BUDGET.js)} ${signedInOk ? 'ok' : 'OVER BUDGET'}`);
process.exit(failed ? 1 : 0);
