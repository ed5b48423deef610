/**
 * What the phone keeps on the device (localStorage, which is per origin and so per tenant).
 * The password itself is never stored: after the first successful REGISTER only the digest HA1 for the
 * server's realm is kept (what JsSIP needs to register again), and signing out deletes it.
 */

const PREFIX = 'webphone.';

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(PREFIX + key);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

function write(key: string, value: unknown): void {
  try {
    if (value === null || value === undefined) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    /* private mode or full: the phone still works for this visit */
  }
}

export interface SavedAccount {
  username: string;
  realm: string;
  ha1: string;
}

export const account = {
  get: (): SavedAccount | null => {
    const a = read<SavedAccount | null>('account', null);
    return a && a.username && a.realm && a.ha1 ? a : null;
  },
  set: (a: SavedAccount | null) => write('account', a),
  lastUsername: (): string => read<string>('last-username', ''),
  setLastUsername: (u: string) => write('last-username', u),
};

export interface HistoryEntry {
  number: string;
  name?: string;
  direction: 'in' | 'out';
  /** Answered (for incoming: not missed). */
  answered: boolean;
  /** Start time, ms since epoch. */
  at: number;
  /** Talk time in ms (0 when not answered). */
  duration: number;
}

const HISTORY_MAX = 200;

export const history = {
  list: (): HistoryEntry[] => read<HistoryEntry[]>('history', []),
  add: (e: HistoryEntry) => write('history', [e, ...history.list()].slice(0, HISTORY_MAX)),
  clear: () => write('history', null),
};

export type RingtoneName = 'classic' | 'digital' | 'soft';

export interface Settings {
  microphoneId: string;
  speakerId: string;
  ringtone: RingtoneName;
}

const DEFAULT_SETTINGS: Settings = { microphoneId: '', speakerId: '', ringtone: 'classic' };

export const settings = {
  get: (): Settings => ({ ...DEFAULT_SETTINGS, ...read<Partial<Settings>>('settings', {}) }),
  set: (patch: Partial<Settings>) => write('settings', { ...settings.get(), ...patch }),
};

export const debug = {
  get: (): boolean => read<boolean>('debug', false),
  set: (on: boolean) => write('debug', on || null),
};
