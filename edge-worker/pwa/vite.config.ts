import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { defineConfig, type Plugin } from 'vite';

/**
 * Emits `/sw.js` (the service worker) from `sw/sw.template.js` with the list of files of this build
 * (the app shell), so the phone opens offline. The cache name carries a hash of that list: a new
 * build gets a new cache and the old one is deleted when the new worker activates.
 */
function serviceWorker(): Plugin {
  return {
    name: 'webphone-service-worker',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => !f.endsWith('.map') && f !== 'sw.js' && f !== 'index.html')
        .map((f) => '/' + f);
      files.push('/');
      files.sort();
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
      const source = readFileSync(new URL('./sw/sw.template.js', import.meta.url), 'utf8')
        .replace('__SHELL__', JSON.stringify(files))
        .replace('__VERSION__', JSON.stringify(version));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

// `npm run dev` proxies the Worker's paths to `cargo xtask dev` on 127.0.0.1:8787.
const worker = 'http://localhost:8787';

export default defineConfig({
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      '/api': worker,
      '/manifest.webmanifest': worker,
      '/icon.svg': worker,
      '/ws': { target: worker.replace('http', 'ws'), ws: true },
    },
  },
  plugins: [serviceWorker()],
});
