import type { App } from '../app';
import { formatDuration, h } from '../dom';
import { icon } from '../icons';
import * as store from '../store';

const when = (at: number) => {
  const d = new Date(at);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
};

/** Calls made and received on this device, newest first, with redial. */
export function renderHistory(app: App): HTMLElement {
  const entries = store.history.list();
  const page = h('section', { class: 'history card', 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'Recent calls'));
  if (!entries.length) {
    page.append(h('p', { class: 'empty' }, 'No calls yet. Calls you make and take on this device show here.'));
    return page;
  }
  page.append(
    h(
      'ul',
      { class: 'history-list' },
      entries.map((e) => {
        const missed = e.direction === 'in' && !e.answered;
        const kind = missed ? 'Missed' : e.direction === 'in' ? 'Incoming' : e.answered ? 'Outgoing' : 'Not answered';
        return h(
          'li',
          { class: missed ? 'missed' : '' },
          icon(missed ? 'phone-missed' : e.direction === 'in' ? 'phone-incoming' : 'phone-outgoing'),
          h(
            'div',
            { class: 'who' },
            h('span', { class: 'name' }, e.name || e.number),
            h('span', { class: 'meta' }, `${kind} · ${when(e.at)}${e.duration ? ' · ' + formatDuration(e.duration) : ''}`),
          ),
          h(
            'button',
            { type: 'button', class: 'icon-button redial', 'aria-label': `Redial ${e.number}`, onclick: () => app.dial(e.number) },
            icon('phone'),
          ),
        );
      }),
    ),
    h('button', {
      type: 'button', class: 'button secondary',
      onclick: () => {
        store.history.clear();
        app.renderPage();
        app.notify('Call history cleared.');
      },
    }, 'Clear history'),
  );
  return page;
}
