/**
 * The call layer: the incoming call screen ("Answer", "Decline", ringtone) and the in-call screen
 * (timer, "Mute", "Hold", "Keypad" for DTMF, transfer, audio devices, quality, "Hang up").
 * It also recovers calls after a network change (ICE restart) before giving up.
 */
import type { App } from '../app';
import { keyTone, onAudioUnlocked, Ringer } from '../audio';
import { canChooseSpeaker, fillDeviceSelect, listAudioDevices } from '../devices';
import { clear, formatDuration, h } from '../dom';
import { icon } from '../icons';
import { describeQuality, QualityMeter } from '../quality';
import type { Call, CallEnd, CallState } from '../sip/phone';
import * as store from '../store';
import { keypad } from './keypad';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function endMessage(call: Call, end: CallEnd): string {
  const byCause: Record<string, string> = {
    Busy: 'Busy',
    Rejected: call.direction === 'out' ? 'Declined' : 'Call declined',
    Canceled: call.direction === 'in' ? 'Missed call' : 'Call cancelled',
    'No Answer': 'No answer',
    Unavailable: 'Not available',
    'Not Found': 'Number not found',
    'Address Incomplete': 'Incomplete number',
    'User Denied Media Access': 'Microphone access was denied: allow it to make calls',
    'Connection Error': 'Connection problem',
    'Request Timeout': 'No response from the server',
    'Incompatible SDP': 'The call could not agree on audio',
    'Authentication Error': 'Not allowed',
  };
  if (end.cause === 'Terminated' || end.cause === 'BYE') return 'Call ended';
  return byCause[end.cause] ?? (end.failed ? `Call failed: ${end.cause}` : 'Call ended');
}

type Panel = 'keypad' | 'transfer' | 'audio' | null;

export class CallScreen {
  readonly el: HTMLElement;
  call: Call | null = null;
  private readonly ringer = new Ringer();
  private readonly ringback = new Ringer();
  private unsubscribers: (() => void)[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  private lastFocus: HTMLElement | null = null;
  private recovering = false;
  private meter = new QualityMeter();
  private panel: Panel = null;
  // Elements of the in-call view.
  private stateEl: HTMLElement | null = null;
  private noticeEl: HTMLElement | null = null;
  private muteButton: HTMLButtonElement | null = null;
  private holdButton: HTMLButtonElement | null = null;
  private panelEl: HTMLElement | null = null;
  private panelButtons: Partial<Record<Exclude<Panel, null>, HTMLButtonElement>> = {};
  private qualityButton: HTMLButtonElement | null = null;
  private qualityDetails: HTMLElement | null = null;

  constructor(private readonly app: App) {
    this.el = h('section', { class: 'call-layer', hidden: true, 'aria-label': 'Call' });
    this.el.addEventListener('keydown', (e) => {
      if (this.panel === 'keypad' && /^[0-9*#]$/.test(e.key) && !(e.target as HTMLElement).matches('input')) {
        e.preventDefault();
        this.sendDigit(e.key);
      }
    });
  }

  private who(call: Call): string {
    return call.remoteName || call.remoteNumber;
  }

  show(call: Call): void {
    this.close();
    this.call = call;
    this.lastFocus = document.activeElement as HTMLElement | null;
    this.setBackgroundInert(true);
    this.el.hidden = false;
    this.unsubscribers.push(
      call.on('state', (s) => this.onState(s)),
      call.on('ended', (e) => void this.onEnded(e)),
      call.on('stream', (stream) => this.playRemote(stream)),
      call.on('hold', ({ local, remote }) => this.onHold(local, remote)),
      call.on('muted', (m) => this.muteButton?.setAttribute('aria-pressed', String(m))),
      call.on('ice', (state) => this.onIce(state)),
      call.on('transfer', (t) => {
        if (t.state === 'trying') this.setNotice('Transferring…');
        else if (t.state === 'done') this.setNotice('Transferred.');
        else this.setNotice(`Transfer failed${t.detail ? ': ' + t.detail : ''}. You are still on the call.`);
      }),
    );
    if (call.state === 'incoming') this.renderIncoming(call);
    else this.renderActive(call);
  }

  private setBackgroundInert(inert: boolean): void {
    for (const sel of ['main', '.bottom-menu', '.topbar .menu-button']) {
      const el = this.app.root.querySelector(sel) as HTMLElement | null;
      if (el) el.inert = inert;
    }
  }

  // ---- incoming --------------------------------------------------------------------------------

  private renderIncoming(call: Call): void {
    const blocked = h('p', { class: 'notice', hidden: true }, 'Tap anywhere to hear the ringtone.');
    const answer = h('button', { type: 'button', class: 'round-button call', 'aria-label': 'Answer', onclick: () => this.answer() }, icon('phone', 32));
    const decline = h('button', { type: 'button', class: 'round-button hangup', 'aria-label': 'Decline', onclick: () => this.decline() }, icon('phone-hangup', 32));
    clear(
      this.el,
      h(
        'div',
        { class: 'call-view incoming', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'call-who', 'aria-describedby': 'call-kind' },
        h('div', { class: 'call-head' },
          h('p', { class: 'call-kind', id: 'call-kind' }, 'Incoming call'),
          h('h2', { id: 'call-who', class: 'call-who' }, this.who(call)),
          call.remoteName ? h('p', { class: 'call-number' }, call.remoteNumber) : null,
        ),
        blocked,
        h('div', { class: 'answer-row' },
          h('div', { class: 'labelled' }, decline, h('span', { 'aria-hidden': 'true' }, 'Decline')),
          h('div', { class: 'labelled' }, answer, h('span', { 'aria-hidden': 'true' }, 'Answer')),
        ),
      ),
    );
    this.app.updateTitle(`Incoming call from ${this.who(call)}`);
    answer.focus();
    if (this.app.config.flags.auto_answer) return;
    const s = store.settings.get();
    void this.ringer.start(s.ringtone, s.speakerId).then((playing) => {
      if (playing || this.call !== call || call.state !== 'incoming') return;
      blocked.hidden = false;
      this.app.notify(`Incoming call from ${this.who(call)}. Tap anywhere to hear the ringtone.`);
      const off = onAudioUnlocked(() => {
        blocked.hidden = true;
        off();
      });
      this.unsubscribers.push(off);
    });
  }

  answer(): void {
    const call = this.call;
    if (!call || call.state !== 'incoming') return;
    this.ringer.stop();
    call.answer({ microphoneId: store.settings.get().microphoneId || undefined });
    this.renderActive(call);
  }

  private decline(): void {
    this.ringer.stop();
    this.call?.decline();
  }

  // ---- in call ---------------------------------------------------------------------------------

  private actionButton(label: string, iconName: string, onclick: () => void, extra: Record<string, string> = {}): HTMLButtonElement {
    return h('button', { type: 'button', class: 'action', onclick, ...extra }, icon(iconName), h('span', {}, label));
  }

  private renderActive(call: Call): void {
    this.stateEl = h('p', { class: 'call-state', role: 'timer', 'aria-live': 'off' }, '');
    this.noticeEl = h('p', { class: 'call-notice', 'aria-live': 'polite' });
    this.muteButton = this.actionButton('Mute', 'microphone-off', () => call.setMuted(!call.muted), { 'aria-pressed': String(call.muted) });
    this.holdButton = this.actionButton('Hold', 'pause', () => this.toggleHold(), { 'aria-pressed': String(call.onHold) });
    this.panelButtons = {
      keypad: this.actionButton('Keypad', 'dialpad', () => this.togglePanel('keypad'), { 'aria-expanded': 'false', 'aria-controls': 'call-panel' }),
      transfer: this.actionButton('Transfer', 'phone-forward', () => this.togglePanel('transfer'), { 'aria-expanded': 'false', 'aria-controls': 'call-panel' }),
      audio: this.actionButton('Audio', 'headset', () => this.togglePanel('audio'), { 'aria-expanded': 'false', 'aria-controls': 'call-panel' }),
    };
    this.qualityDetails = h('p', { class: 'quality-details', id: 'quality-details', hidden: true });
    this.qualityButton = h(
      'button',
      {
        type: 'button', class: 'quality', 'data-level': 'unknown', 'aria-expanded': 'false', 'aria-controls': 'quality-details', hidden: true,
        onclick: () => {
          const open = this.qualityDetails!.hidden;
          this.qualityDetails!.hidden = !open;
          this.qualityButton!.setAttribute('aria-expanded', String(open));
        },
      },
      icon('signal-cellular-outline', 20),
      h('span', {}, 'Quality: measuring'),
    );
    this.panelEl = h('div', { class: 'call-panel', id: 'call-panel', hidden: true });
    this.panel = null;
    const hangup = h('button', { type: 'button', class: 'round-button hangup', 'aria-label': 'Hang up', onclick: () => call.hangup() }, icon('phone-hangup', 32));
    clear(
      this.el,
      h(
        'div',
        { class: 'call-view active', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'call-who' },
        h('div', { class: 'call-head' },
          h('h2', { id: 'call-who', class: 'call-who' }, this.who(call)),
          call.remoteName ? h('p', { class: 'call-number' }, call.remoteNumber) : null,
          this.stateEl,
          this.qualityButton,
          this.qualityDetails,
        ),
        this.noticeEl,
        h('div', { class: 'actions-grid' }, this.muteButton, this.holdButton, this.panelButtons.keypad, this.panelButtons.transfer, this.panelButtons.audio),
        this.panelEl,
        h('div', { class: 'hangup-row' }, hangup),
      ),
    );
    this.onState(call.state);
    this.timers.push(setInterval(() => this.tick(), 1000));
    this.timers.push(setInterval(() => void this.sampleQuality(), 2000));
    if (call.stream) this.playRemote(call.stream);
    hangup.focus();
  }

  private tick(): void {
    const call = this.call;
    if (!call || !this.stateEl) return;
    if (call.state === 'active' && call.answeredAt) {
      const held = call.onHold ? ' · On hold' : '';
      this.stateEl.textContent = formatDuration(Date.now() - call.answeredAt) + held;
    }
  }

  private onState(state: CallState): void {
    const call = this.call;
    if (!call) return;
    if (state === 'ringing' && call.direction === 'out' && !call.stream) {
      void this.ringback.start('ringback', store.settings.get().speakerId);
    }
    if (state === 'answering' || state === 'active' || state === 'ended') this.ringback.stop();
    if (state !== 'incoming') this.ringer.stop();
    if (!this.stateEl) return;
    const text: Partial<Record<CallState, string>> = {
      calling: 'Calling…',
      ringing: 'Ringing…',
      answering: 'Connecting…',
      active: '0:00',
    };
    if (text[state]) this.stateEl.textContent = text[state]!;
    if (state === 'active') {
      this.app.updateTitle(`In call with ${this.who(call)}`);
      if (this.qualityButton) this.qualityButton.hidden = false;
      this.tick();
    }
  }

  private onHold(local: boolean, remote: boolean): void {
    this.holdButton?.setAttribute('aria-pressed', String(local));
    if (remote && !local) this.setNotice('The other side put the call on hold.');
    else if (local) this.setNotice('On hold.');
    else this.setNotice('');
    this.tick();
  }

  private toggleHold(): void {
    const call = this.call;
    if (!call) return;
    const want = !call.onHold;
    if (!call.setHold(want)) this.setNotice(want ? "Can't hold right now, try again in a moment." : "Can't resume right now, try again in a moment.");
  }

  private setNotice(text: string): void {
    if (this.noticeEl) this.noticeEl.textContent = text;
  }

  private playRemote(stream: MediaStream): void {
    this.ringback.stop();
    const audio = this.app.remoteAudio;
    if (audio.srcObject !== stream) audio.srcObject = stream;
    void audio.play().catch(() => {
      this.setNotice('Tap anywhere to hear the call.');
      this.app.notify('The browser blocked the call audio. Tap anywhere to hear it.');
    });
  }

  private togglePanel(panel: Exclude<Panel, null>): void {
    const next = this.panel === panel ? null : panel;
    this.panel = next;
    for (const [name, button] of Object.entries(this.panelButtons)) button?.setAttribute('aria-expanded', String(name === next));
    const el = this.panelEl!;
    el.hidden = next === null;
    if (next === 'keypad') this.renderKeypad(el);
    else if (next === 'transfer') this.renderTransfer(el);
    else if (next === 'audio') void this.renderAudio(el);
    else el.replaceChildren();
  }

  private sendDigit(key: string): void {
    const call = this.call;
    if (!call || call.state !== 'active') return;
    keyTone(key);
    try {
      call.sendDtmf(key);
    } catch (err) {
      this.setNotice(`The tone could not be sent: ${(err as Error).message}`);
      return;
    }
    const sent = this.panelEl?.querySelector('.dtmf-sent');
    if (sent) sent.textContent = (sent.textContent ?? '') + key;
  }

  private renderKeypad(el: HTMLElement): void {
    clear(el, h('p', { class: 'dtmf-sent', 'aria-live': 'polite', 'aria-label': 'Tones sent' }), keypad((k) => this.sendDigit(k), 'Keypad tones'));
    (el.querySelector('.key') as HTMLElement | null)?.focus();
  }

  private renderTransfer(el: HTMLElement): void {
    const input = h('input', { id: 'transfer-to', type: 'tel', inputmode: 'tel', autocomplete: 'off', required: true });
    clear(
      el,
      h(
        'form',
        {
          class: 'transfer',
          onsubmit: (e: Event) => {
            e.preventDefault();
            const target = input.value.trim();
            if (!target) {
              input.focus();
              return;
            }
            this.call?.transfer(target);
          },
        },
        h('div', { class: 'field' }, h('label', { for: 'transfer-to' }, 'Transfer to'), input),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'button primary' }, 'Transfer call'),
          h('button', { type: 'button', class: 'button secondary', onclick: () => this.togglePanel('transfer') }, 'Cancel'),
        ),
      ),
    );
    input.focus();
  }

  private async renderAudio(el: HTMLElement): Promise<void> {
    const mic = h('select', { id: 'call-mic' });
    const speaker = h('select', { id: 'call-speaker' });
    const d = await listAudioDevices();
    const s = store.settings.get();
    fillDeviceSelect(mic, d.inputs, 'microphone', s.microphoneId);
    fillDeviceSelect(speaker, d.outputs, 'speaker', s.speakerId);
    mic.addEventListener('change', () => {
      void this.call?.setMicrophone(mic.value).catch((err) => this.setNotice(`Could not switch the microphone: ${(err as Error).message}`));
      if (this.app.config.flags.edit_settings) store.settings.set({ microphoneId: mic.value });
    });
    speaker.addEventListener('change', () => {
      this.app.applySinkId(speaker.value);
      if (this.app.config.flags.edit_settings) store.settings.set({ speakerId: speaker.value });
    });
    if (this.panel !== 'audio') return;
    clear(
      el,
      h('div', { class: 'field' }, h('label', { for: 'call-mic' }, 'Microphone'), mic),
      canChooseSpeaker
        ? h('div', { class: 'field' }, h('label', { for: 'call-speaker' }, 'Speaker'), speaker)
        : h('p', { class: 'hint' }, 'This browser plays calls on its default speaker.'),
    );
    mic.focus();
  }

  private async sampleQuality(): Promise<void> {
    const stats = this.call?.state === 'active' ? this.call.getStats() : null;
    if (!stats || !this.qualityButton) return;
    try {
      const q = this.meter.read(await stats);
      const label = { good: 'Good', fair: 'Fair', poor: 'Poor', unknown: 'measuring' }[q.level];
      this.qualityButton.dataset.level = q.level;
      const ic = { good: 'signal-cellular-3', fair: 'signal-cellular-2', poor: 'signal-cellular-1', unknown: 'signal-cellular-outline' }[q.level];
      clear(this.qualityButton, icon(ic, 20), h('span', {}, `Quality: ${label}`));
      this.qualityDetails!.textContent = describeQuality(q);
      if (this.app.debug) console.debug('[phone] quality', q);
    } catch {
      /* the connection is closing */
    }
  }

  // ---- network recovery ------------------------------------------------------------------------

  private onIce(state: RTCIceConnectionState): void {
    if (this.app.debug) console.info('[phone] ICE', state);
    if (state === 'failed') void this.recover();
    if (state === 'disconnected') {
      setTimeout(() => {
        if (this.call?.peerConnection?.iceConnectionState === 'disconnected') void this.recover();
      }, 3000);
    }
  }

  networkChanged(): void {
    const call = this.call;
    if (!call || call.state !== 'active') return;
    if (!navigator.onLine) {
      this.setNotice('Offline: the call will try to reconnect when the network is back.');
      return;
    }
    void this.recover();
  }

  /** ICE restart (a re-INVITE with new ICE credentials) once signalling is back; hang up if it fails. */
  private async recover(): Promise<void> {
    const call = this.call;
    if (this.recovering || !call || call.state !== 'active') return;
    this.recovering = true;
    this.setNotice('The network changed: reconnecting the call…');
    const deadline = Date.now() + 25_000;
    const iceOk = () => ['connected', 'completed'].includes(call.peerConnection?.iceConnectionState ?? '');
    try {
      for (let attempt = 1; attempt <= 3 && Date.now() < deadline; attempt++) {
        while (!(this.app.phone?.connected ?? false) && Date.now() < deadline && this.call === call) await sleep(500);
        if (this.call !== call || call.state !== 'active') return;
        if (!this.app.phone?.connected) break;
        if (this.app.debug) console.info(`[phone] ICE restart, attempt ${attempt}`);
        if (await call.iceRestart()) {
          for (let i = 0; i < 20 && !iceOk() && this.call === call; i++) await sleep(400);
          if (iceOk()) {
            this.setNotice('Call reconnected.');
            return;
          }
        }
        await sleep(1500);
      }
      if (this.call === call && call.state === 'active' && !iceOk()) {
        this.setNotice('');
        this.app.notify('The call dropped: the network changed and the call could not be reconnected.', 8000);
        call.hangup();
      } else if (iceOk()) {
        this.setNotice('');
      }
    } finally {
      this.recovering = false;
    }
  }

  // ---- end -------------------------------------------------------------------------------------

  private async onEnded(end: CallEnd): Promise<void> {
    const call = this.call;
    if (!call) return;
    this.ringer.stop();
    this.ringback.stop();
    this.app.recordCall(call);
    const message = endMessage(call, end);
    if (this.app.debug) console.info('[phone] call ended', end);
    const view = this.el.querySelector('.call-view');
    if (view) {
      for (const b of view.querySelectorAll('button')) (b as HTMLButtonElement).disabled = true;
      const kind = view.querySelector('.call-state, .call-kind');
      if (kind) kind.textContent = message;
    }
    this.app.notify(message, 4000);
    await sleep(1500);
    if (this.call === call) this.close();
  }

  /** Hides the layer and forgets the call (hanging it up if it is still going). */
  close(): void {
    const call = this.call;
    this.call = null;
    if (call && call.state !== 'ended') call.hangup();
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.ringer.stop();
    this.ringback.stop();
    this.meter = new QualityMeter();
    this.panel = null;
    this.app.remoteAudio.srcObject = null;
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.el.replaceChildren();
    this.setBackgroundInert(false);
    this.app.updateTitle();
    if (this.lastFocus?.isConnected) this.lastFocus.focus();
    this.lastFocus = null;
  }
}
