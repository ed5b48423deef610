/**
 * The phone's shell and state: header (brand, balance, status), the page area, the bottom menu, the
 * side menu, the call layer; signing in and out; calls and their recovery. Pages live in `ui/`.
 */
import { isFrameless, visibleMenu, type MenuItem, type TenantConfig } from './config';
import { clear, h } from './dom';
import { icon } from './icons';
import * as store from './store';
import { onAudioUnlocked } from './audio';
import type { Call, ConnectionStatus, Phone } from './sip/phone';
import { renderSignIn } from './ui/signin';
import { renderDialpad } from './ui/dialpad';
import { renderHistory } from './ui/history';
import { renderSettings } from './ui/settings';
import { CallScreen } from './ui/call';

type PhoneModule = typeof import('./sip/phone');

/** JsSIP is loaded only once someone signs in: the sign-in screen stays small and fast. */
let phoneModule: Promise<PhoneModule> | null = null;
export function loadPhoneModule(): Promise<PhoneModule> {
  phoneModule ??= import('./sip/phone');
  return phoneModule;
}

export type Route = { kind: 'page'; page: 'dialpad' | 'history' | 'settings' } | { kind: 'menu'; index: number };

export class App {
  readonly root: HTMLElement;
  private readonly header: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly debugEl: HTMLElement;
  private readonly balanceEl: HTMLElement | null;
  private readonly menuButton: HTMLButtonElement;
  readonly main: HTMLElement;
  private readonly nav: HTMLElement;
  private readonly side: HTMLDialogElement;
  private readonly toastEl: HTMLElement;
  readonly remoteAudio: HTMLAudioElement;
  private readonly callScreen: CallScreen;

  phone: Phone | null = null;
  username: string | null = null;
  debug = store.debug.get();
  /** The config came from the offline cache and nothing has reached the server since. */
  private serverUnreachable: boolean;
  private signInError = '';
  private pendingPassword = false;
  private toastTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly config: TenantConfig,
    offline: boolean,
    mount: HTMLElement,
  ) {
    this.serverUnreachable = offline;
    const f = config.flags;
    this.menuButton = h(
      'button',
      { type: 'button', class: 'icon-button menu-button', 'aria-label': 'Menu', 'aria-haspopup': 'dialog', 'aria-expanded': 'false', onclick: () => this.openSide() },
      icon('menu'),
    );
    this.titleEl = h('h1', { class: 'brand' }, config.brand_name);
    this.balanceEl = f.display_balance
      ? h('span', { class: 'balance', 'data-testid': 'balance' }, h('span', { class: 'balance-label' }, 'Balance '), h('span', { class: 'balance-value' }, '—'))
      : null;
    this.debugEl = h('span', { class: 'debug-badge', hidden: !this.debug }, 'Debug');
    this.statusEl = h('p', { class: 'status', role: 'status', 'data-state': 'idle' }, '');
    this.header = h('header', { class: 'topbar' }, this.menuButton, this.titleEl, this.balanceEl, this.debugEl, this.statusEl);
    this.main = h('main', { id: 'main', class: 'page', tabindex: '-1' });
    this.nav = h('nav', { class: 'bottom-menu', 'aria-label': 'Main menu' });
    this.callScreen = new CallScreen(this);
    this.side = h('dialog', { class: `side ${f.menu_right ? 'right' : 'left'}`, 'aria-label': 'Side menu' }) as HTMLDialogElement;
    this.side.addEventListener('click', (e) => {
      if (e.target === this.side) this.closeSide(); // a click on the backdrop
    });
    this.side.addEventListener('close', () => this.menuButton.setAttribute('aria-expanded', 'false'));
    this.toastEl = h('div', { class: 'toast', 'aria-live': 'polite', 'aria-atomic': 'true' });
    this.remoteAudio = h('audio', { autoplay: true, class: 'remote-audio' });
    this.root = h(
      'div',
      { class: `app side-${f.menu_right ? 'right' : 'left'}` },
      this.header,
      h('div', { class: 'body' }, this.main, this.nav, this.callScreen.el),
      this.side,
      this.toastEl,
      this.remoteAudio,
    );
    clear(mount, this.root);

    window.addEventListener('hashchange', () => this.renderPage());
    window.addEventListener('online', () => this.networkChanged());
    window.addEventListener('offline', () => this.networkChanged());
    const conn = (navigator as Navigator & { connection?: EventTarget }).connection;
    conn?.addEventListener?.('change', () => this.networkChanged());
    onAudioUnlocked(() => {
      if (this.remoteAudio.srcObject && this.remoteAudio.paused) void this.remoteAudio.play().catch(() => undefined);
    });
    this.applySinkId(store.settings.get().speakerId);
  }

  /** Starts the phone with the saved account, or shows sign-in. */
  async start(): Promise<void> {
    const saved = store.account.get();
    if (saved) await this.startPhone({ username: saved.username, realm: saved.realm, ha1: saved.ha1 });
    this.render();
  }

  // ---- rendering ------------------------------------------------------------------------------

  render(): void {
    this.updateTitle();
    this.renderStatus();
    const signedIn = this.username !== null;
    this.menuButton.hidden = !signedIn;
    this.nav.hidden = !signedIn;
    if (signedIn) this.renderNav();
    this.renderSide();
    this.renderPage();
  }

  updateTitle(extra?: string): void {
    const base = this.config.flags.username_as_title && this.username ? this.username : this.config.brand_name;
    document.title = extra ? `${extra} – ${base}` : base;
  }

  private renderStatus(): void {
    const { text, state } = this.statusText();
    if (this.statusEl.textContent !== text) this.statusEl.textContent = text;
    this.statusEl.dataset.state = state;
  }

  private statusText(): { text: string; state: string } {
    const offline = !navigator.onLine || this.serverUnreachable;
    if (!this.phone) return offline ? { text: 'Offline', state: 'offline' } : { text: 'Signed out', state: 'idle' };
    const s = this.phone.status;
    switch (s.state) {
      case 'registered':
        return { text: 'Registered', state: 'ok' };
      case 'registering':
        return { text: 'Registering…', state: 'busy' };
      case 'connecting':
        return offline ? { text: 'Offline', state: 'offline' } : { text: 'Connecting…', state: 'busy' };
      case 'reconnecting':
        return offline ? { text: 'Offline', state: 'offline' } : { text: 'Reconnecting…', state: 'busy' };
      case 'offline':
        return { text: 'Offline', state: 'offline' };
      case 'failed':
        return { text: `Not registered: ${s.detail ?? 'error'}`, state: 'error' };
      default:
        return { text: 'Signed out', state: 'idle' };
    }
  }

  private menuItems(): MenuItem[] {
    return visibleMenu(this.config);
  }

  currentRoute(): Route {
    const hash = location.hash.replace(/^#\/?/, '');
    const m = /^menu-(\d+)$/.exec(hash);
    const items = this.menuItems();
    if (m && Number(m[1]) < items.length) return { kind: 'menu', index: Number(m[1]) };
    if (hash === 'dialpad' || hash === 'history' || hash === 'settings') {
      const i = items.findIndex((it) => it.page === hash);
      return i >= 0 ? { kind: 'menu', index: i } : { kind: 'page', page: hash };
    }
    const dial = items.findIndex((it) => it.page === 'dialpad');
    if (dial >= 0) return { kind: 'menu', index: dial };
    return items.length ? { kind: 'menu', index: 0 } : { kind: 'page', page: 'dialpad' };
  }

  private routeHash(item: MenuItem, index: number): string {
    return item.page ? `#${item.page}` : `#menu-${index}`;
  }

  private renderNav(): void {
    const items = this.menuItems();
    const route = this.currentRoute();
    clear(
      this.nav,
      h(
        'ul',
        {},
        items.map((item, index) => {
          const current = route.kind === 'menu' && route.index === index;
          return h(
            'li',
            {},
            h(
              'a',
              { href: this.routeHash(item, index), class: 'nav-item', 'aria-current': current ? 'page' : null, 'data-position': String(item.position) },
              icon(item.icon),
              h('span', { class: 'nav-title' }, item.title),
            ),
          );
        }),
      ),
    );
  }

  renderPage(): void {
    this.main.classList.remove('frameless');
    if (this.username === null) {
      clear(this.main, renderSignIn(this, this.signInError));
      return;
    }
    if (!this.nav.hidden) this.renderNav();
    const route = this.currentRoute();
    let page: 'dialpad' | 'history' | 'settings' | null = null;
    let item: MenuItem | null = null;
    if (route.kind === 'page') page = route.page;
    else {
      item = this.menuItems()[route.index] ?? null;
      page = item?.page ?? null;
    }
    if (page === 'dialpad') clear(this.main, renderDialpad(this));
    else if (page === 'history') clear(this.main, renderHistory(this));
    else if (page === 'settings') clear(this.main, renderSettings(this));
    else if (item?.template !== undefined) {
      const frameless = isFrameless(item);
      this.main.classList.toggle('frameless', frameless);
      const container = h('div', { class: frameless ? 'template frameless-template' : 'template card', 'data-testid': 'template-page' });
      // Operator-provided HTML (the tenant's config). Scripts in it do not run.
      container.innerHTML = item.template;
      clear(this.main, h('h2', { class: 'visually-hidden' }, item.title), container);
    } else {
      clear(this.main, renderDialpad(this));
    }
  }

  private renderSide(): void {
    const f = this.config.flags;
    const links: [string, string, string][] = [
      ['#dialpad', 'Dialpad', 'dialpad'],
      ['#history', 'History', 'history'],
      ['#settings', 'Settings', 'cog'],
    ];
    clear(
      this.side,
      h(
        'div',
        { class: 'side-inner' },
        h(
          'div',
          { class: 'side-head' },
          h('h2', { class: 'side-brand' }, this.config.brand_name),
          h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close menu', onclick: () => this.closeSide() }, icon('close')),
        ),
        this.username ? h('p', { class: 'side-user' }, icon('account', 20), h('span', {}, 'Signed in as '), h('strong', { 'data-testid': 'side-username' }, this.username)) : null,
        h(
          'ul',
          { class: 'side-links' },
          links.map(([href, label, ic]) =>
            h('li', {}, h('a', { href, onclick: () => this.closeSide() }, icon(ic, 20), h('span', {}, label))),
          ),
        ),
        this.debug ? h('p', { class: 'side-debug' }, icon('bug', 20), 'Debug mode is on (SIP messages go to the console)') : null,
        h('div', { class: 'side-spacer' }),
        f.hide_uuid || !this.config.version_id
          ? null
          : h('p', { class: 'version', 'data-testid': 'version-id' }, 'Version ', h('code', {}, this.config.version_id)),
        this.username
          ? h('button', { type: 'button', class: 'button secondary', onclick: () => this.signOut() }, icon('logout', 20), 'Sign out')
          : null,
      ),
    );
  }

  openSide(): void {
    this.renderSide();
    this.side.showModal();
    this.menuButton.setAttribute('aria-expanded', 'true');
  }

  closeSide(): void {
    if (this.side.open) this.side.close();
  }

  /** A short message for everyone (screen readers included). */
  notify(message: string, ms = 5000): void {
    this.toastEl.textContent = message;
    this.toastEl.classList.add('show');
    if (this.toastTimer) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => this.toastEl.classList.remove('show'), ms);
  }

  // ---- account ---------------------------------------------------------------------------------

  async signIn(username: string, password: string): Promise<void> {
    this.signInError = '';
    store.account.setLastUsername(username);
    this.pendingPassword = true;
    await this.startPhone({ username, password });
    this.render();
    (this.main.querySelector('input, button') as HTMLElement | null)?.focus();
  }

  signOut(message = ''): void {
    this.closeSide();
    this.callScreen.close();
    this.phone?.stop();
    this.phone = null;
    this.username = null;
    this.pendingPassword = false;
    store.account.set(null);
    this.signInError = message;
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    this.render();
    (this.main.querySelector(message ? '#password' : '#username') as HTMLElement | null)?.focus();
  }

  private async startPhone(creds: { username: string; password?: string; realm?: string; ha1?: string }): Promise<void> {
    const { Phone, redactSip } = await loadPhoneModule();
    const phone = new Phone({
      ...creds,
      websocketUrl: this.config.websocket_url,
      domain: this.config.domain,
      userAgent: `${this.config.brand_name} (webphone)`,
    });
    this.phone = phone;
    this.username = creds.username;
    phone.on('status', (s: ConnectionStatus) => {
      if (s.state === 'registering' || s.state === 'registered') this.serverUnreachable = false;
      if (this.debug) console.info('[phone] status', s.state, s.detail ?? '');
      this.renderStatus();
    });
    phone.on('registered', ({ realm, ha1 }) => {
      if (realm && ha1) store.account.set({ username: creds.username, realm, ha1 });
      this.pendingPassword = false;
    });
    phone.on('authFailed', ({ reason }) => {
      if (this.phone !== phone) return;
      if (this.debug) console.info('[phone] authentication failed:', reason);
      this.signOut(this.pendingPassword ? 'Wrong username or password.' : 'Please sign in again.');
    });
    phone.on('sip', (t) => {
      if (!this.debug) return;
      const first = t.text.slice(0, t.text.indexOf('\r\n'));
      console.groupCollapsed(`%cSIP ${t.direction === 'out' ? '→ out' : '← in'}%c ${first}`, 'font-weight:bold', '');
      console.log(redactSip(t.text));
      console.groupEnd();
    });
    phone.on('incoming', (call) => this.incoming(call));
    phone.start();
  }

  // ---- calls -----------------------------------------------------------------------------------

  /** A call is up (one that just ended and still shows its outcome does not count). */
  get inCall(): boolean {
    const call = this.callScreen.call;
    return call !== null && call.state !== 'ended';
  }

  /** Places a call from the dialpad or history. Returns false (and says why) when it cannot. */
  dial(number: string): boolean {
    const target = number.trim();
    if (!target) {
      this.notify('Enter a number to call.');
      return false;
    }
    if (!this.phone || this.phone.status.state !== 'registered') {
      this.notify(`Can't call yet: the phone is not registered (${this.statusText().text}).`);
      return false;
    }
    if (this.inCall) {
      this.notify('Hang up the current call first.');
      return false;
    }
    let call: Call;
    try {
      call = this.phone.call(target, { microphoneId: store.settings.get().microphoneId || undefined });
    } catch (err) {
      this.notify(`The call could not start: ${(err as Error).message}`);
      return false;
    }
    this.callScreen.show(call);
    return true;
  }

  private incoming(call: Call): void {
    if (this.inCall) {
      call.decline(true);
      store.history.add({ number: call.remoteNumber, name: call.remoteName, direction: 'in', answered: false, at: call.createdAt, duration: 0 });
      this.notify(`Missed call from ${call.remoteName || call.remoteNumber} (you were in a call).`);
      return;
    }
    this.callScreen.show(call);
    if (this.config.flags.auto_answer) this.callScreen.answer();
  }

  /** Records a finished call in the history on this device. */
  recordCall(call: Call): void {
    store.history.add({
      number: call.remoteNumber,
      name: call.remoteName || undefined,
      direction: call.direction,
      answered: call.answeredAt !== null,
      at: call.createdAt,
      duration: call.answeredAt ? Date.now() - call.answeredAt : 0,
    });
    if (this.currentRoute().kind === 'menu' && this.main.querySelector('.history')) this.renderPage();
  }

  applySinkId(id: string): void {
    const audio = this.remoteAudio as HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> };
    if (audio.setSinkId) void audio.setSinkId(id).catch((err) => console.warn('[phone] speaker choice failed', err));
  }

  // ---- network ---------------------------------------------------------------------------------

  private networkChanged(): void {
    if (navigator.onLine) void this.recheckServer();
    this.renderStatus();
    this.phone?.networkChanged();
    this.callScreen.networkChanged();
  }

  private async recheckServer(): Promise<void> {
    if (!this.serverUnreachable) return;
    try {
      const res = await fetch('/api/config', { cache: 'no-store' });
      if (res.headers.get('x-webphone-offline') !== '1') {
        this.serverUnreachable = false;
        this.renderStatus();
        if (!this.phone) this.renderPage();
      }
    } catch {
      /* still offline */
    }
  }

  get offline(): boolean {
    return !navigator.onLine || this.serverUnreachable;
  }

  // ---- debug -----------------------------------------------------------------------------------

  toggleDebug(): void {
    this.debug = !this.debug;
    store.debug.set(this.debug);
    this.debugEl.hidden = !this.debug;
    console.info(`[phone] debug mode ${this.debug ? 'on: every SIP message in and out is logged here' : 'off'}`);
    this.notify(this.debug ? 'Debug mode on: SIP messages are logged to the browser console.' : 'Debug mode off.');
    this.renderSide();
  }
}
