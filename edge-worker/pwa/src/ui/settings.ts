import type { App } from '../app';
import { Ringer, RINGTONES } from '../audio';
import { allowDeviceLabels, canChooseSpeaker, fillDeviceSelect, listAudioDevices } from '../devices';
import { h } from '../dom';
import * as store from '../store';
import type { RingtoneName } from '../store';

const preview = new Ringer();

/** Audio devices and ringtone. Read-only unless the tenant sets `edit_settings`. */
export function renderSettings(app: App): HTMLElement {
  const editable = app.config.flags.edit_settings;
  const s = store.settings.get();
  const mic = h('select', { id: 'setting-mic' });
  const speaker = h('select', { id: 'setting-speaker' });
  const ringtone = h(
    'select',
    { id: 'setting-ringtone' },
    RINGTONES.map((r) => h('option', { value: r.value, selected: r.value === s.ringtone }, r.label)),
  );
  const deviceNote = h('p', { class: 'hint', 'aria-live': 'polite' });
  const allow = h('button', {
    type: 'button', class: 'button secondary', hidden: true,
    onclick: async () => {
      try {
        await allowDeviceLabels();
        await refresh();
      } catch {
        deviceNote.textContent = 'The browser did not allow the microphone, so devices cannot be named.';
      }
    },
  }, 'Show device names');

  const refresh = async () => {
    const d = await listAudioDevices();
    const cur = store.settings.get();
    fillDeviceSelect(mic, d.inputs, 'microphone', cur.microphoneId);
    fillDeviceSelect(speaker, d.outputs, 'speaker', cur.speakerId);
    allow.hidden = d.labelled || !editable;
  };
  void refresh();

  mic.addEventListener('change', () => store.settings.set({ microphoneId: mic.value }));
  speaker.addEventListener('change', () => {
    store.settings.set({ speakerId: speaker.value });
    app.applySinkId(speaker.value);
  });
  ringtone.addEventListener('change', () => store.settings.set({ ringtone: ringtone.value as RingtoneName }));

  let playing = false;
  const play = h('button', {
    type: 'button', class: 'button secondary', 'aria-pressed': 'false',
    onclick: async () => {
      playing = !playing;
      play.setAttribute('aria-pressed', String(playing));
      play.textContent = playing ? 'Stop ringtone' : 'Play ringtone';
      if (playing) {
        const ok = await preview.start(ringtone.value as RingtoneName, store.settings.get().speakerId);
        if (!ok) app.notify('The browser blocked the sound. Tap the page, then try again.');
        setTimeout(() => {
          if (playing) play.click();
        }, 6000);
      } else preview.stop();
    },
  }, 'Play ringtone');

  const f = app.config.flags;
  return h(
    'section',
    { class: 'settings card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'Settings'),
    editable ? null : h('p', { class: 'notice' }, `These settings are managed by ${app.config.brand_name} and can't be changed here.`),
    h(
      'fieldset',
      { disabled: !editable },
      h('legend', {}, 'Audio'),
      h('div', { class: 'field' }, h('label', { for: 'setting-mic' }, 'Microphone'), mic),
      canChooseSpeaker
        ? h('div', { class: 'field' }, h('label', { for: 'setting-speaker' }, 'Speaker'), speaker)
        : h('p', { class: 'hint' }, 'This browser plays calls on its default speaker.'),
      h('div', { class: 'field' }, h('label', { for: 'setting-ringtone' }, 'Ringtone'), ringtone),
    ),
    h('div', { class: 'actions' }, play, allow),
    deviceNote,
    h(
      'dl',
      { class: 'about' },
      h('dt', {}, 'Signed in as'), h('dd', {}, app.username ?? '—'),
      h('dt', {}, 'Debug logging'), h('dd', { 'data-testid': 'debug-state' }, app.debug ? 'On' : 'Off'),
      f.hide_uuid || !app.config.version_id ? null : [h('dt', {}, 'Version'), h('dd', {}, h('code', {}, app.config.version_id))],
    ),
  );
}
