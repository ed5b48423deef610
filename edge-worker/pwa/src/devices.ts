/** Microphones and speakers (enumerateDevices; setSinkId where the browser has it). */

export interface AudioDevices {
  inputs: MediaDeviceInfo[];
  outputs: MediaDeviceInfo[];
  /** Labels are only given once the page may use the microphone. */
  labelled: boolean;
}

export const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

export async function listAudioDevices(): Promise<AudioDevices> {
  if (!navigator.mediaDevices?.enumerateDevices) return { inputs: [], outputs: [], labelled: false };
  const all = await navigator.mediaDevices.enumerateDevices();
  const inputs = all.filter((d) => d.kind === 'audioinput');
  const outputs = all.filter((d) => d.kind === 'audiooutput');
  return { inputs, outputs, labelled: all.some((d) => d.label !== '') };
}

/** Asks for the microphone once so devices get their names. */
export async function allowDeviceLabels(): Promise<void> {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  for (const t of stream.getTracks()) t.stop();
}

export function deviceLabel(d: MediaDeviceInfo, index: number, kind: string): string {
  if (d.deviceId === 'default' || d.deviceId === '') return d.label ? d.label : `Default ${kind}`;
  return d.label || `${kind[0].toUpperCase()}${kind.slice(1)} ${index + 1}`;
}

/** Fills a <select> with devices, "Default" first. */
export function fillDeviceSelect(select: HTMLSelectElement, devices: MediaDeviceInfo[], kind: string, selected: string): void {
  select.replaceChildren();
  const def = document.createElement('option');
  def.value = '';
  def.textContent = `System default ${kind}`;
  select.append(def);
  devices
    .filter((d) => d.deviceId !== 'default' && d.deviceId !== 'communications' && d.deviceId !== '')
    .forEach((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = deviceLabel(d, i, kind);
      select.append(o);
    });
  select.value = [...select.options].some((o) => o.value === selected) ? selected : '';
}
