// The console's shell: hash routes to pages, errors shown, never a blank page.
import { h, errorBox } from './lib.js';
import * as overview from './overview.js';
import * as topics from './topics.js';
import * as messages from './messages.js';
import * as groups from './groups.js';
import * as transactions from './transactions.js';

// [pattern, page, nav link]: a page's render(main, ...params) may return a
// function that stops its timers when the page is left.
const ROUTES = [
  [/^#\/overview$/, overview.render, '#/overview'],
  [/^#\/topics$/, topics.renderList, '#/topics'],
  [/^#\/topics\/([^/]+)$/, topics.renderTopic, '#/topics'],
  [/^#\/topics\/([^/]+)\/messages$/, messages.render, '#/topics'],
  [/^#\/groups$/, groups.renderList, '#/groups'],
  [/^#\/groups\/([^/]+)$/, groups.renderGroup, '#/groups'],
  [/^#\/transactions$/, transactions.render, '#/transactions'],
];

let stop = null;

async function show() {
  if (stop) { stop(); stop = null; }
  const main = document.getElementById('main');
  const hash = location.hash || '#/overview';
  const route = ROUTES.find(([re]) => re.test(hash));
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('active', route && a.getAttribute('href') === route[2]);
  }
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  if (!route) {
    main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, `No page at ${hash}.`));
    return;
  }
  const params = hash.match(route[0]).slice(1).map(decodeURIComponent);
  try {
    stop = (await route[1](main, ...params)) || null;
    main.dataset.ready = hash;
  } catch (err) {
    main.replaceChildren(h('h1', {}, 'Error'), errorBox(err));
    main.dataset.ready = hash;
  }
}

window.addEventListener('hashchange', show);
show();
