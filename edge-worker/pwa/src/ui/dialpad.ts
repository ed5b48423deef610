import type { App } from '../app';
import { keyTone } from '../audio';
import { h } from '../dom';
import { icon } from '../icons';
import { keypad } from './keypad';

const DEBUG_CODE = '*#0*#';

/** The dialpad: the "Number" field, the keys (with key tones) and "Call". `*#0*#` toggles debug mode. */
export function renderDialpad(app: App): HTMLElement {
  const number = h('input', {
    id: 'number', name: 'number', type: 'tel', inputmode: 'tel', autocomplete: 'off', class: 'number',
    placeholder: 'Enter a number',
  });
  const checkCode = () => {
    if (number.value.endsWith(DEBUG_CODE)) {
      number.value = number.value.slice(0, -DEBUG_CODE.length);
      app.toggleDebug();
    }
  };
  number.addEventListener('input', checkCode);
  const press = (key: string) => {
    keyTone(key);
    number.value += key;
    checkCode();
  };
  const backspace = h(
    'button',
    {
      type: 'button', class: 'icon-button backspace', 'aria-label': 'Delete last digit',
      onclick: () => {
        number.value = number.value.slice(0, -1);
        number.focus();
      },
    },
    icon('backspace-outline'),
  );
  const form = h(
    'form',
    {
      class: 'dialpad',
      onsubmit: (e: Event) => {
        e.preventDefault();
        app.dial(number.value);
      },
    },
    h('label', { for: 'number', class: 'visually-hidden' }, 'Number'),
    h('div', { class: 'number-row' }, number, backspace),
    keypad(press, 'Dialpad keys'),
    h('div', { class: 'call-row' },
      h('button', { type: 'submit', class: 'round-button call', 'aria-label': 'Call' }, icon('phone', 32)),
    ),
  );
  // Typing digits anywhere on the page (not in another field) goes to the number.
  form.addEventListener('keydown', (e) => {
    if (e.target !== number && /^[0-9*#]$/.test(e.key) && !(e.target as HTMLElement).matches('input, select, textarea')) {
      e.preventDefault();
      press(e.key);
      number.focus();
    }
  });
  return h('div', { class: 'dialpad-page' }, form);
}
