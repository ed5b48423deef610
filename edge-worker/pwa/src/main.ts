import './styles.css';
import { App } from './app';
import { loadConfig } from './config';
import { unlockOnFirstGesture } from './audio';
import { h, clear } from './dom';

/** Registers /sw.js (root scope): the app shell opens offline; Web Push will hook in here later. */
function registerServiceWorker(): void {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return;
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => {
    console.warn('[phone] service worker registration failed', err);
  });
}

async function boot(): Promise<void> {
  const mount = document.getElementById('app')!;
  registerServiceWorker();
  unlockOnFirstGesture();
  try {
    const { config, offline } = await loadConfig();
    const app = new App(config, offline, mount);
    (window as unknown as { webphone?: App }).webphone = app;
    await app.start();
  } catch (err) {
    const offline = !navigator.onLine || err instanceof TypeError;
    clear(
      mount,
      h('main', { class: 'page' },
        h('div', { class: 'card boot-error' },
          h('p', { role: 'status' }, offline ? 'Offline' : 'Error'),
          h('p', {}, offline
            ? "The phone can't reach its server. Check your connection; it will open once you're back online."
            : `The phone could not start: ${(err as Error).message}`),
          h('button', { type: 'button', class: 'button primary', onclick: () => location.reload() }, 'Try again'),
        ),
      ),
    );
    if (offline) window.addEventListener('online', () => location.reload(), { once: true });
  }
}

void boot();
