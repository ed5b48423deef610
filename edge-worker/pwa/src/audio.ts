/**
 * Sounds made with WebAudio (no files): dialpad key tones (DTMF pairs), ringtones, ringback.
 *
 * Browsers start an AudioContext "suspended" until the user interacts with the page (autoplay policy).
 * `unlockOnFirstGesture()` resumes it on the first tap or key press; `ring()` tells the caller when the
 * ringtone is blocked so the UI can ask for that tap.
 */
import type { RingtoneName } from './store';

let ctx: AudioContext | null = null;

function context(): AudioContext | null {
  if (ctx) return ctx;
  const Ctor = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!Ctor) return null;
  ctx = new Ctor();
  return ctx;
}

export function audioBlocked(): boolean {
  const c = context();
  return !c || c.state !== 'running';
}

const unlockListeners = new Set<() => void>();

/** Calls `listener` once audio is unlocked by a gesture. */
export function onAudioUnlocked(listener: () => void): () => void {
  unlockListeners.add(listener);
  return () => unlockListeners.delete(listener);
}

export function unlockOnFirstGesture(): void {
  const unlock = () => {
    const c = context();
    if (!c) return;
    void c.resume().then(() => {
      if (c.state === 'running') {
        for (const l of [...unlockListeners]) l();
      }
    });
  };
  // Not `once`: a later tap must still work if an earlier one did not unlock (e.g. a scroll).
  for (const type of ['pointerdown', 'keydown', 'touchend']) {
    window.addEventListener(type, unlock, { capture: true, passive: true });
  }
}

const DTMF: Record<string, [number, number]> = {
  '1': [697, 1209], '2': [697, 1336], '3': [697, 1477], A: [697, 1633],
  '4': [770, 1209], '5': [770, 1336], '6': [770, 1477], B: [770, 1633],
  '7': [852, 1209], '8': [852, 1336], '9': [852, 1477], C: [852, 1633],
  '*': [941, 1209], '0': [941, 1336], '#': [941, 1477], D: [941, 1633],
};

function tone(c: AudioContext, freqs: number[], start: number, length: number, volume: number, out: AudioNode) {
  const gain = c.createGain();
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(volume, start + 0.01);
  gain.gain.setValueAtTime(volume, start + length - 0.02);
  gain.gain.linearRampToValueAtTime(0, start + length);
  gain.connect(out);
  for (const f of freqs) {
    const osc = c.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start(start);
    osc.stop(start + length);
  }
}

/** The local feedback tone of a dialpad key. */
export function keyTone(key: string): void {
  const c = context();
  const pair = DTMF[key.toUpperCase()];
  if (!c || !pair) return;
  if (c.state !== 'running') void c.resume();
  tone(c, pair, c.currentTime + 0.005, 0.12, 0.08, c.destination);
}

type Pattern = { period: number; play: (c: AudioContext, t: number, out: AudioNode) => void };

const PATTERNS: Record<RingtoneName | 'ringback', Pattern> = {
  // UK-style double ring.
  classic: {
    period: 3,
    play: (c, t, out) => {
      tone(c, [400, 450], t, 0.4, 0.18, out);
      tone(c, [400, 450], t + 0.6, 0.4, 0.18, out);
    },
  },
  digital: {
    period: 2,
    play: (c, t, out) => {
      for (let i = 0; i < 4; i++) tone(c, [i % 2 ? 800 : 1000], t + i * 0.12, 0.1, 0.12, out);
    },
  },
  soft: {
    period: 3,
    play: (c, t, out) => {
      tone(c, [660], t, 0.5, 0.12, out);
      tone(c, [880], t + 0.5, 0.7, 0.1, out);
    },
  },
  // What the caller hears while the other side rings (North American ringback).
  ringback: {
    period: 6,
    play: (c, t, out) => tone(c, [440, 480], t, 2, 0.06, out),
  },
};

export const RINGTONES: { value: RingtoneName; label: string }[] = [
  { value: 'classic', label: 'Classic' },
  { value: 'digital', label: 'Digital' },
  { value: 'soft', label: 'Soft' },
];

/** A repeating pattern until stopped. */
export class Ringer {
  private timer: ReturnType<typeof setInterval> | null = null;
  private gain: GainNode | null = null;

  /** Starts ringing; resolves to false when the browser blocks the sound until a gesture. */
  async start(name: RingtoneName | 'ringback', sinkId = ''): Promise<boolean> {
    this.stop();
    const c = context();
    if (!c) return false;
    const pattern = PATTERNS[name] ?? PATTERNS.classic;
    const sinkable = c as AudioContext & { setSinkId?: (id: string) => Promise<void> };
    if (sinkId && sinkable.setSinkId) await sinkable.setSinkId(sinkId).catch(() => undefined);
    const gain = c.createGain();
    gain.connect(c.destination);
    this.gain = gain;
    let next = c.currentTime + 0.05;
    const schedule = () => {
      // Keep one period scheduled ahead; while suspended currentTime stands still, nothing piles up.
      while (next < c.currentTime + pattern.period) {
        pattern.play(c, next, gain);
        next += pattern.period;
      }
    };
    schedule();
    this.timer = setInterval(schedule, 500);
    await Promise.race([c.resume(), new Promise((r) => setTimeout(r, 300))]);
    return c.state === 'running';
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.gain) {
      this.gain.disconnect();
      this.gain = null;
    }
  }
}
