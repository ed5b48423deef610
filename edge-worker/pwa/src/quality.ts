/** Call quality from WebRTC stats: packet loss, jitter and round-trip time -> good / fair / poor. */

export type QualityLevel = 'good' | 'fair' | 'poor' | 'unknown';

export interface Quality {
  level: QualityLevel;
  /** Packet loss in percent over the last interval (worst of what we receive and what they receive). */
  loss: number | null;
  /** Jitter in ms (worst direction). */
  jitter: number | null;
  /** Round-trip time in ms. */
  rtt: number | null;
  codec: string | null;
}

export function classify(loss: number | null, jitter: number | null, rtt: number | null): QualityLevel {
  if (loss === null && jitter === null && rtt === null) return 'unknown';
  const l = loss ?? 0;
  const j = jitter ?? 0;
  const r = rtt ?? 0;
  if (l >= 5 || j >= 50 || r >= 500) return 'poor';
  if (l >= 1 || j >= 30 || r >= 300) return 'fair';
  return 'good';
}

type Stat = Record<string, unknown> & { type: string; id: string };
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Keeps the previous counters so loss is measured per interval, not since the call started. */
export class QualityMeter {
  private lastLost = 0;
  private lastReceived = 0;

  read(report: RTCStatsReport): Quality {
    let loss: number | null = null;
    let jitter: number | null = null;
    let rtt: number | null = null;
    let codec: string | null = null;
    const stats = [...(report as unknown as Map<string, Stat>).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const max = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

    for (const s of stats) {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        const lost = num(s.packetsLost) ?? 0;
        const received = num(s.packetsReceived) ?? 0;
        const dLost = Math.max(0, lost - this.lastLost);
        const dReceived = Math.max(0, received - this.lastReceived);
        this.lastLost = lost;
        this.lastReceived = received;
        if (dLost + dReceived > 0) loss = max(loss, (100 * dLost) / (dLost + dReceived));
        const j = num(s.jitter);
        if (j !== null) jitter = max(jitter, j * 1000);
        const c = byId.get(String(s.codecId));
        if (c && typeof c.mimeType === 'string') codec = c.mimeType.replace(/^audio\//, '');
      } else if (s.type === 'remote-inbound-rtp' && s.kind === 'audio') {
        const f = num(s.fractionLost);
        if (f !== null) loss = max(loss, f * 100);
        const j = num(s.jitter);
        if (j !== null) jitter = max(jitter, j * 1000);
        const r = num(s.roundTripTime);
        if (r !== null) rtt = max(rtt, r * 1000);
      } else if (s.type === 'candidate-pair' && (s.nominated || s.selected) && s.state === 'succeeded') {
        const r = num(s.currentRoundTripTime);
        if (r !== null && rtt === null) rtt = r * 1000;
      }
    }
    return { level: classify(loss, jitter, rtt), loss, jitter, rtt, codec };
  }
}

export function describeQuality(q: Quality): string {
  const parts = [
    `packet loss ${q.loss === null ? '—' : q.loss.toFixed(1) + ' %'}`,
    `jitter ${q.jitter === null ? '—' : Math.round(q.jitter) + ' ms'}`,
    `round trip ${q.rtt === null ? '—' : Math.round(q.rtt) + ' ms'}`,
  ];
  if (q.codec) parts.push(`codec ${q.codec}`);
  return parts.join(', ');
}
