import type { App } from '../app';
import { h } from '../dom';
import * as store from '../store';

/** Sign in with the SIP username and password; "Sign up" only where the tenant allows it. */
export function renderSignIn(app: App, error: string): HTMLElement {
  const brand = app.config.brand_name;
  const username = h('input', {
    id: 'username', name: 'username', type: 'text', autocomplete: 'username', autocapitalize: 'none',
    spellcheck: 'false', required: true, value: store.account.lastUsername(),
  });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { class: 'form-message', 'aria-live': 'polite' });
  const errorEl = h('p', { class: 'form-error', id: 'signin-error', role: 'alert' }, error);
  if (error) password.setAttribute('aria-describedby', 'signin-error');
  const offline = app.offline
    ? h('p', { class: 'notice' }, "You're offline. You can sign in once the connection is back.")
    : null;

  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'signin card',
      novalidate: true,
      onsubmit: (e: Event) => {
        e.preventDefault();
        const u = username.value.trim();
        if (!u || !password.value) {
          errorEl.textContent = 'Enter your username and password.';
          (u ? password : username).focus();
          return;
        }
        if (/[\s@:;]/.test(u)) {
          errorEl.textContent = 'The username is the part before the @ of your phone address, without spaces.';
          username.focus();
          return;
        }
        submit.disabled = true;
        void app.signIn(u, password.value).finally(() => {
          submit.disabled = false;
        });
      },
    },
    h('h2', {}, `Sign in to ${brand}`),
    offline,
    h('div', { class: 'field' }, h('label', { for: 'username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), password),
    errorEl,
    h('div', { class: 'actions' },
      submit,
      app.config.flags.register
        ? h('button', {
            type: 'button', class: 'button secondary',
            onclick: () => {
              message.textContent = `Sign-up isn't available yet. Ask ${brand} for an account, then sign in here with your username and password.`;
            },
          }, 'Sign up')
        : null,
    ),
    message,
  );
  return h('div', { class: 'signin-page' }, form);
}
