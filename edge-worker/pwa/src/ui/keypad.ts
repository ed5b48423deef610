import { h } from '../dom';

const KEYS: [string, string][] = [
  ['1', ''], ['2', 'ABC'], ['3', 'DEF'],
  ['4', 'GHI'], ['5', 'JKL'], ['6', 'MNO'],
  ['7', 'PQRS'], ['8', 'TUV'], ['9', 'WXYZ'],
  ['*', ''], ['0', '+'], ['#', ''],
];

/** The 12-key pad. Each key's accessible name is its digit. */
export function keypad(onKey: (key: string) => void, label: string): HTMLElement {
  return h(
    'div',
    { class: 'keypad', role: 'group', 'aria-label': label },
    KEYS.map(([key, letters]) =>
      h(
        'button',
        { type: 'button', class: 'key', 'aria-label': key, 'data-key': key, onclick: () => onKey(key) },
        h('span', { class: 'digit', 'aria-hidden': 'true' }, key),
        h('span', { class: 'letters', 'aria-hidden': 'true' }, letters || '\u00a0'),
      ),
    ),
  );
}
