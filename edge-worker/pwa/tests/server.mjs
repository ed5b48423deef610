// A tiny static server for the UI tests: serves dist/ like the Worker's assets, and answers the Worker's
// own paths (/api/config, /manifest.webmanifest, /icon.svg) with fixtures, so tests run without the Worker.
// `/ws` is refused unless a fake SIP edge (tests/fake-sip.mjs) is plugged in with `server.sip = ...`.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, '..', 'dist');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
};
const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="#1565c0"/>' +
  '<text x="32" y="42" font-size="28" text-anchor="middle" fill="#fff" font-family="sans-serif">D</text></svg>';

export async function fixtureConfig(patch = {}) {
  const base = JSON.parse(await readFile(join(here, 'fixtures', 'config.json'), 'utf8'));
  return { ...base, ...patch, flags: { ...base.flags, ...(patch.flags ?? {}) } };
}

/** Starts the server on a free loopback port (or `port`). */
export async function startServer({ port = 0 } = {}) {
  let config = await fixtureConfig();
  const manifest = await readFile(join(here, 'fixtures', 'manifest.webmanifest'), 'utf8');
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const send = (status, type, body, extra = {}) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-cache', ...extra });
      res.end(body);
    };
    try {
      if (url.pathname === '/api/config') return send(200, 'application/json', JSON.stringify(config));
      if (url.pathname === '/manifest.webmanifest') return send(200, TYPES['.webmanifest'], manifest);
      if (url.pathname === '/icon.svg') return send(200, TYPES['.svg'], ICON);
      if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/admin/') || url.pathname === '/ws') {
        return send(404, 'application/problem+json', JSON.stringify({ title: 'Not Found', status: 404 }));
      }
      let path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, '');
      if (path === '/' || path === '') path = '/index.html';
      const file = join(dist, path);
      if (!file.startsWith(dist)) return send(403, 'text/plain', 'forbidden');
      const body = await readFile(file);
      const immutable = path.startsWith('/assets/') ? { 'cache-control': 'public, max-age=31536000, immutable' } : {};
      return send(200, TYPES[extname(file)] ?? 'application/octet-stream', body, immutable);
    } catch {
      return send(404, 'text/plain', 'not found');
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let sip = null;
  server.on('upgrade', (req, socket) => {
    if (sip && new URL(req.url, 'http://localhost').pathname === '/ws') sip.upgrade(req, socket);
    else socket.destroy();
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = server.address().port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    setConfig(c) {
      config = c;
    },
    set sip(s) {
      sip = s;
    },
    get sip() {
      return sip;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
