/**
 * A small typed adapter over JsSIP: the rest of the app never touches JsSIP directly.
 *
 * - `Phone` owns the user agent: WebSocket (subprotocol "sip") to the edge, REGISTER to `sip:<domain>`
 *   with MD5 digest auth, reconnection with backoff (JsSIP's, 2 s to 30 s, randomised exponential), and
 *   re-REGISTER with backoff after a failed registration that is not a credentials problem.
 * - `Call` wraps one session: answer, decline, hang up, mute, hold, DTMF (RFC 4733 telephone-events
 *   through the RTCDTMFSender, JsSIP's "RFC2833" transport, set explicitly), blind transfer (REFER),
 *   ICE restart and stats.
 * - Every SIP message in and out passes the `sip` event (the socket is tapped), which debug mode logs.
 */
import * as JsSIP from 'jssip';
import type { RTCSession } from 'jssip/lib/RTCSession';
import type { UAConfiguration } from 'jssip/lib/UA';
import { Emitter } from '../emitter';

export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'registering'
  | 'registered'
  | 'reconnecting'
  | 'offline'
  | 'failed'
  | 'stopped';

export interface ConnectionStatus {
  state: ConnectionState;
  /** Why, for `failed` (e.g. "403 Forbidden") and `reconnecting`. */
  detail?: string;
}

export interface Credentials {
  username: string;
  /** The plain password (first sign-in); afterwards the app keeps only `realm` + `ha1`. */
  password?: string;
  realm?: string;
  ha1?: string;
}

export interface PhoneOptions extends Credentials {
  websocketUrl: string;
  /** The SIP domain (Domain A): accounts are sip:USER@domain, REGISTER goes to sip:domain. */
  domain: string;
  displayName?: string;
  userAgent?: string;
}

export interface SipTrace {
  direction: 'in' | 'out';
  text: string;
}

export interface PhoneEvents {
  status: ConnectionStatus;
  /** Registered: `realm`/`ha1` are what to keep instead of the password. */
  registered: { realm?: string; ha1?: string };
  /** The server refused the credentials (401/403 after auth): sign in again. */
  authFailed: { code?: number; reason: string };
  incoming: Call;
  sip: SipTrace;
}

/** A JsSIP socket that taps every message in and out. */
class TappedSocket {
  onconnect: () => void = () => {};
  ondisconnect: (error: boolean, code?: number, reason?: string) => void = () => {};
  ondata: (data: unknown) => void = () => {};

  constructor(
    private readonly inner: JsSIP.Socket,
    private readonly tap: (t: SipTrace) => void,
  ) {}

  get via_transport(): string {
    return this.inner.via_transport;
  }
  set via_transport(v: string) {
    this.inner.via_transport = v;
  }
  get url(): string {
    return this.inner.url;
  }
  get sip_uri(): string {
    return this.inner.sip_uri;
  }
  connect(): void {
    this.inner.onconnect = () => this.onconnect();
    this.inner.ondisconnect = (error: boolean, code?: number, reason?: string) =>
      this.ondisconnect(error, code, reason);
    (this.inner as unknown as { ondata: (d: unknown) => void }).ondata = (data: unknown) => {
      if (typeof data === 'string' && data !== '\r\n') this.tap({ direction: 'in', text: data });
      this.ondata(data);
    };
    this.inner.connect();
  }
  disconnect(): void {
    this.inner.disconnect();
  }
  send(message: string): boolean {
    if (typeof message === 'string' && message !== '\r\n\r\n') this.tap({ direction: 'out', text: message });
    return this.inner.send(message);
  }
  isConnected(): boolean {
    return this.inner.isConnected();
  }
  isConnecting(): boolean {
    return this.inner.isConnecting();
  }
}

/** Removes what could help someone reuse credentials: the digest response in auth headers. */
export function redactSip(text: string): string {
  return text.replace(/^((?:Proxy-)?Authorization:.*?response=")[^"]*(")/gim, '$1…$2');
}

function reasonOf(response: { status_code?: number; reason_phrase?: string } | null | undefined, cause?: string) {
  if (response && response.status_code) return `${response.status_code} ${response.reason_phrase ?? ''}`.trim();
  return cause ?? 'unknown error';
}

export interface CallOptions {
  /** Microphone deviceId (default device when absent). */
  microphoneId?: string;
  /** ICE servers; the media node is ICE-lite with public addresses, so none are needed by default. */
  iceServers?: RTCIceServer[];
}

function audioConstraints(microphoneId?: string): MediaStreamConstraints {
  return {
    audio: microphoneId ? { deviceId: { exact: microphoneId } } : true,
    video: false,
  };
}

export class Phone extends Emitter<PhoneEvents> {
  private ua: JsSIP.UA | null = null;
  private statusValue: ConnectionStatus = { state: 'idle' };
  private wasConnected = false;
  private stopping = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryCount = 0;
  private readonly calls = new Set<Call>();

  constructor(private readonly options: PhoneOptions) {
    super();
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  get username(): string {
    return this.options.username;
  }

  get activeCalls(): Call[] {
    return [...this.calls];
  }

  private setStatus(status: ConnectionStatus): void {
    this.statusValue = status;
    this.emit('status', status);
  }

  /** Connects and registers. Reconnects by itself until `stop()`. */
  start(): void {
    if (this.ua) return;
    this.stopping = false;
    const o = this.options;
    const socket = new TappedSocket(new JsSIP.WebSocketInterface(o.websocketUrl), (t) => this.emit('sip', t));
    const config: UAConfiguration = {
      sockets: [socket as unknown as JsSIP.Socket],
      uri: `sip:${o.username}@${o.domain}`,
      registrar_server: `sip:${o.domain}`,
      authorization_user: o.username,
      display_name: o.displayName,
      register: true,
      register_expires: 600,
      session_timers: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
      user_agent: o.userAgent,
    };
    if (o.password) config.password = o.password;
    else if (o.ha1 && o.realm) {
      config.ha1 = o.ha1;
      config.realm = o.realm;
    }
    const ua = new JsSIP.UA(config);
    this.ua = ua;
    // Events of a user agent that was replaced (restart) or stopped are ignored.
    const live = () => this.ua === ua && !this.stopping;

    ua.on('connecting', (e) => {
      if (!live()) return;
      const again = this.wasConnected || e.attempts > 1;
      if (!navigator.onLine) this.setStatus({ state: 'offline' });
      else this.setStatus({ state: again ? 'reconnecting' : 'connecting' });
    });
    ua.on('connected', () => {
      if (!live()) return;
      this.wasConnected = true;
      this.setStatus({ state: 'registering' });
    });
    ua.on('disconnected', (e) => {
      if (!live()) return;
      const detail = e.code ? `connection closed (${e.code})` : 'connection lost';
      this.setStatus(navigator.onLine ? { state: 'reconnecting', detail } : { state: 'offline' });
    });
    ua.on('registered', () => {
      if (!live()) return;
      this.retryCount = 0;
      this.setStatus({ state: 'registered' });
      this.emit('registered', { realm: ua.get('realm'), ha1: ua.get('ha1') });
    });
    ua.on('unregistered', () => {
      if (live() && ua.isConnected()) this.setStatus({ state: 'registering' });
    });
    ua.on('registrationFailed', (e) => {
      if (!live()) return;
      const code = e.response?.status_code;
      const reason = reasonOf(e.response, e.cause);
      if (code === 401 || code === 403 || code === 407 || e.cause === JsSIP.C.causes.AUTHENTICATION_ERROR) {
        this.setStatus({ state: 'failed', detail: 'wrong username or password' });
        this.emit('authFailed', { code, reason });
        return;
      }
      if (e.cause === JsSIP.C.causes.CONNECTION_ERROR) return; // the transport reconnects and re-registers
      this.setStatus({ state: 'failed', detail: reason });
      this.scheduleRegisterRetry();
    });
    ua.on('newRTCSession', (e: { originator: string; session: RTCSession }) => {
      if (e.originator !== 'remote') return;
      const call = this.track(new Call(e.session, 'in'));
      this.emit('incoming', call);
    });
    this.setStatus({ state: navigator.onLine ? 'connecting' : 'offline' });
    ua.start();
  }

  private scheduleRegisterRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryCount += 1;
    const seconds = Math.min(60, 2 ** this.retryCount) * (0.75 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.ua && !this.stopping && this.ua.isConnected()) this.ua.register();
    }, seconds * 1000);
  }

  /**
   * The network came back or changed: if the socket is down, reconnect now rather than waiting for the
   * backoff timer (a fresh user agent, which is only done when no call is up).
   */
  networkChanged(): void {
    if (!this.ua || this.stopping) return;
    if (!navigator.onLine) {
      this.setStatus({ state: 'offline' });
      return;
    }
    if (!this.ua.isConnected() && this.calls.size === 0) {
      this.restart();
    }
  }

  private restart(): void {
    const ua = this.ua;
    this.ua = null;
    if (ua) {
      this.stopping = true;
      ua.stop();
    }
    this.stopping = false;
    this.start();
  }

  /** Whether the signalling socket is up (an ICE restart needs it). */
  get connected(): boolean {
    return this.ua?.isConnected() ?? false;
  }

  /** Unregisters, hangs up and closes the socket. */
  stop(): void {
    this.stopping = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const call of this.calls) call.hangup();
    const ua = this.ua;
    this.ua = null;
    if (ua) {
      try {
        ua.stop();
      } catch (err) {
        console.warn('[phone] stop failed', err);
      }
    }
    this.setStatus({ state: 'stopped' });
  }

  /** Places a call to a number, an extension or a SIP URI. */
  call(target: string, options: CallOptions = {}): Call {
    if (!this.ua) throw new Error('The phone is signed out.');
    const session = this.ua.call(target, {
      mediaConstraints: audioConstraints(options.microphoneId),
      pcConfig: { iceServers: options.iceServers ?? [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    });
    return this.track(new Call(session, 'out', target));
  }

  private track(call: Call): Call {
    this.calls.add(call);
    call.on('ended', () => this.calls.delete(call));
    return call;
  }
}

export type CallState = 'incoming' | 'calling' | 'ringing' | 'answering' | 'active' | 'ended';

export interface CallEnd {
  /** Who ended it: `local`, `remote` or `system`. */
  originator: string;
  /** JsSIP's cause, e.g. "Busy", "Canceled", "Terminated", "Rejected". */
  cause: string;
  /** The call was answered before it ended. */
  answered: boolean;
  /** A failure (never connected) rather than a normal end. */
  failed: boolean;
}

export interface CallEvents {
  state: CallState;
  ended: CallEnd;
  /** The remote audio, to play in an <audio> element. */
  stream: MediaStream;
  hold: { local: boolean; remote: boolean };
  muted: boolean;
  /** The peer connection's ICE state changed (for recovery and the UI). */
  ice: RTCIceConnectionState;
  /** Transfer progress: `trying`, `done` (the call is handed over) or `failed`. */
  transfer: { state: 'trying' | 'done' | 'failed'; detail?: string };
}

export class Call extends Emitter<CallEvents> {
  readonly direction: 'in' | 'out';
  /** Number or user part of the other side. */
  readonly remoteNumber: string;
  readonly remoteName: string;
  readonly createdAt = Date.now();
  answeredAt: number | null = null;
  private stateValue: CallState;
  private remoteStream: MediaStream | null = null;
  private pc: RTCPeerConnection | null = null;

  constructor(
    private readonly session: RTCSession,
    direction: 'in' | 'out',
    dialled?: string,
  ) {
    super();
    this.direction = direction;
    const id = session.remote_identity;
    this.remoteNumber = direction === 'out' && dialled ? dialled : (id?.uri?.user ?? 'unknown');
    this.remoteName = id?.display_name ?? '';
    this.stateValue = direction === 'in' ? 'incoming' : 'calling';

    if (session.connection) this.attach(session.connection);
    session.on('peerconnection', (e) => this.attach(e.peerconnection));
    session.on('progress', () => {
      if (this.direction === 'out') this.setState('ringing');
    });
    session.on('accepted', () => this.setState('answering'));
    session.on('confirmed', () => {
      this.answeredAt ??= Date.now();
      this.setState('active');
    });
    const end = (originator: string, cause: string, failed: boolean) => {
      if (this.stateValue === 'ended') return;
      this.setState('ended');
      this.emit('ended', { originator, cause, answered: this.answeredAt !== null, failed });
    };
    session.on('ended', (e) => end(e.originator, e.cause, false));
    session.on('failed', (e) => end(e.originator, e.cause, true));
    session.on('hold', () => this.emit('hold', session.isOnHold()));
    session.on('unhold', () => this.emit('hold', session.isOnHold()));
    session.on('muted', () => this.emit('muted', true));
    session.on('unmuted', () => this.emit('muted', false));
  }

  get state(): CallState {
    return this.stateValue;
  }

  get stream(): MediaStream | null {
    return this.remoteStream;
  }

  get peerConnection(): RTCPeerConnection | null {
    return this.pc;
  }

  private setState(state: CallState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private attach(pc: RTCPeerConnection): void {
    if (this.pc === pc) return;
    this.pc = pc;
    pc.addEventListener('track', (e) => {
      const stream = e.streams[0] ?? new MediaStream([e.track]);
      this.remoteStream = stream;
      this.emit('stream', stream);
    });
    pc.addEventListener('iceconnectionstatechange', () => this.emit('ice', pc.iceConnectionState));
  }

  answer(options: CallOptions = {}): void {
    if (this.stateValue !== 'incoming') return;
    this.setState('answering');
    this.session.answer({
      mediaConstraints: audioConstraints(options.microphoneId),
      pcConfig: { iceServers: options.iceServers ?? [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' },
    });
  }

  /** Rejects an incoming call: 603 Decline (the user said no) or 486 Busy Here (already in a call). */
  decline(busy = false): void {
    if (this.session.isEnded()) return;
    this.session.terminate(
      busy ? { status_code: 486, reason_phrase: 'Busy Here' } : { status_code: 603, reason_phrase: 'Decline' },
    );
  }

  /** Ends the call in whatever state it is (CANCEL, BYE or a rejection). */
  hangup(): void {
    if (this.session.isEnded()) return;
    try {
      this.session.terminate();
    } catch (err) {
      console.warn('[phone] hangup failed', err);
    }
  }

  setMuted(muted: boolean): void {
    if (muted) this.session.mute({ audio: true });
    else this.session.unmute({ audio: true });
  }

  get muted(): boolean {
    return this.session.isMuted().audio ?? false;
  }

  /** Puts the call on hold (re-INVITE with a=sendonly) or takes it off. */
  setHold(hold: boolean): boolean {
    return hold ? this.session.hold() : this.session.unhold();
  }

  get onHold(): boolean {
    return this.session.isOnHold().local;
  }

  /** One DTMF digit (0-9, *, #, A-D) as RFC 4733 telephone-events in the RTP stream. */
  sendDtmf(tone: string): void {
    if (!/^[0-9A-D#*]$/i.test(tone)) throw new Error(`Not a DTMF digit: ${tone}`);
    this.session.sendDTMF(tone, {
      transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833,
      duration: 120,
      interToneGap: 70,
    });
  }

  /** Blind transfer (REFER). The call ends by itself once the other side took it over. */
  transfer(target: string): void {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const done = () => {
      if (timer) clearTimeout(timer);
      this.emit('transfer', { state: 'done' });
      this.hangup();
    };
    this.emit('transfer', { state: 'trying' });
    try {
      this.session.refer(target, {
        eventHandlers: {
          requestSucceeded: () => {
            // 202 Accepted. Wait for the NOTIFY with the outcome, but not forever.
            timer = setTimeout(done, 10_000);
          },
          requestFailed: (e: { response?: { status_code?: number; reason_phrase?: string }; cause?: string }) =>
            this.emit('transfer', { state: 'failed', detail: reasonOf(e?.response, e?.cause) }),
          accepted: done,
          failed: (e: { status_line?: { status_code?: number; reason_phrase?: string } }) => {
            if (timer) clearTimeout(timer);
            this.emit('transfer', { state: 'failed', detail: reasonOf(e?.status_line) });
          },
        },
      });
    } catch (err) {
      this.emit('transfer', { state: 'failed', detail: (err as Error).message });
    }
  }

  /**
   * Renegotiates with an ICE restart (after a network change). Resolves true when the re-INVITE
   * succeeded, false when it could not be sent or was refused.
   */
  iceRestart(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.stateValue !== 'active' || !this.session.isReadyToReOffer()) {
        resolve(false);
        return;
      }
      let settled = false;
      const finish = (ok: boolean) => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      const sent = this.session.renegotiate({ rtcOfferConstraints: { iceRestart: true } }, () => finish(true));
      if (!sent) finish(false);
      setTimeout(() => finish(false), 15_000);
    });
  }

  /** Switches the microphone during the call. */
  async setMicrophone(deviceId: string): Promise<void> {
    const pc = this.pc;
    if (!pc) return;
    const stream = await navigator.mediaDevices.getUserMedia(audioConstraints(deviceId));
    const track = stream.getAudioTracks()[0];
    const sender = pc.getSenders().find((s) => s.track?.kind === 'audio' || s.track === null);
    if (!sender || !track) return;
    const old = sender.track;
    track.enabled = !this.muted;
    await sender.replaceTrack(track);
    old?.stop();
  }

  getStats(): Promise<RTCStatsReport> | null {
    return this.pc ? this.pc.getStats() : null;
  }
}
