/** The tenant's public config, as served by the Worker at `GET /api/config`. */

export type BuiltinPage = 'dialpad' | 'history' | 'settings';

export interface MenuItem {
  title: string;
  /** Material Design Icons name, `mdi-phone` or `phone`. */
  icon: string;
  /** 1 = far left; `"disabled"` hides the item. */
  position: number | 'disabled';
  page?: BuiltinPage;
  template?: string;
  frameless?: boolean;
}

export interface Flags {
  hide_uuid: boolean;
  menu_right: boolean;
  display_balance: boolean;
  edit_settings: boolean;
  register: boolean;
  username_as_title: boolean;
  accept_payment: boolean;
  auto_answer: boolean;
}

export interface TenantConfig {
  domain: string;
  brand_name: string;
  webrtc_host: string;
  websocket_url: string;
  menu: MenuItem[];
  flags: Flags;
  register_success_html: string;
  version_id: string;
}

const NO_FLAGS: Flags = {
  hide_uuid: false,
  menu_right: false,
  display_balance: false,
  edit_settings: false,
  register: false,
  username_as_title: false,
  accept_payment: false,
  auto_answer: false,
};

/** The built-in bottom menu, used when the tenant's menu is empty. */
export const DEFAULT_MENU: MenuItem[] = [
  { title: 'Dialpad', icon: 'mdi-dialpad', position: 1, page: 'dialpad' },
  { title: 'History', icon: 'mdi-history', position: 2, page: 'history' },
  { title: 'Settings', icon: 'mdi-cog', position: 3, page: 'settings' },
];

export const NO_CONTAINER = '<!-- NO-CONTAINER -->';

export interface LoadedConfig {
  config: TenantConfig;
  /** The answer came from the service worker's cache: the server could not be reached. */
  offline: boolean;
}

/** Fills defaults so the rest of the app can trust the shape. */
export function normalizeConfig(raw: Partial<TenantConfig>): TenantConfig {
  const domain = raw.domain || location.hostname;
  const webrtcHost = raw.webrtc_host || domain;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return {
    domain,
    brand_name: raw.brand_name || 'Phone',
    webrtc_host: webrtcHost,
    websocket_url: raw.websocket_url || `${scheme}://${webrtcHost}/ws`,
    menu: Array.isArray(raw.menu) ? raw.menu : [],
    flags: { ...NO_FLAGS, ...(raw.flags || {}) },
    register_success_html: raw.register_success_html || '',
    version_id: raw.version_id || '',
  };
}

export async function loadConfig(): Promise<LoadedConfig> {
  const res = await fetch('/api/config', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`The phone's settings could not be loaded (HTTP ${res.status}).`);
  const raw = (await res.json()) as Partial<TenantConfig>;
  return { config: normalizeConfig(raw), offline: res.headers.get('x-webphone-offline') === '1' };
}

/** The visible bottom menu: enabled items ordered by position (the built-in menu when empty). */
export function visibleMenu(config: TenantConfig): MenuItem[] {
  const items = config.menu.length ? config.menu : DEFAULT_MENU;
  return items
    .filter((m) => typeof m.position === 'number')
    .sort((a, b) => (a.position as number) - (b.position as number));
}

export function isFrameless(item: MenuItem): boolean {
  return item.frameless === true || (item.template ?? '').trimStart().startsWith(NO_CONTAINER);
}
