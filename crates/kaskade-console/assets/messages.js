// The message browser: read a partition from an offset, a time or the
// newest records, filter, tail live; produce a record.
import { api, h, table, errorBox, fmtTime, fmtBytes } from './lib.js';

function shown(s) {
  if (!s) return h('span', { class: 'muted' }, 'null');
  const note = s.truncated ? h('div', { class: 'muted' }, `first ${fmtBytes(s.text.length / (s.kind === 'hex' ? 2 : 1))} of ${fmtBytes(s.size)}`) : null;
  return h('div', {}, s.kind === 'text' ? null : h('span', { class: 'tag' }, s.kind), h('pre', {}, s.text), note);
}

function row(m) {
  return [m.offset, fmtTime(m.timestamp), shown(m.key), shown(m.value),
    h('div', {}, m.headers.map(([k, v]) => h('div', {}, h('b', {}, k), ': ', v ? v.text : 'null')))];
}

const HEADERS = [{ label: 'Offset', num: true }, 'Timestamp', 'Key', 'Value', 'Headers'];

/** "k: v" lines to [{key, value}]. */
function parseHeaders(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const i = l.indexOf(':');
    return i < 0 ? { key: l, value: null } : { key: l.slice(0, i).trim(), value: l.slice(i + 1).trim() };
  });
}

export async function render(main, topic) {
  const t = await api('GET', `/topics/${encodeURIComponent(topic)}`);
  const enc = encodeURIComponent(topic);
  const partition = h('select', { 'data-testid': 'partition' },
    t.partitions.map((p) => h('option', { value: p.partition }, p.partition)));
  const from = h('select', { 'data-testid': 'from' },
    h('option', { value: 'newest' }, 'newest'), h('option', { value: 'offset' }, 'offset'),
    h('option', { value: 'timestamp' }, 'timestamp'));
  const offset = h('input', { type: 'number', min: 0, placeholder: 'offset', 'data-testid': 'offset' });
  const time = h('input', { type: 'datetime-local', step: 1, 'data-testid': 'time' });
  const limit = h('input', { type: 'number', min: 1, max: 500, value: 50, size: 5 });
  const filter = h('input', { placeholder: 'text in key, value or headers', 'data-testid': 'filter' });
  const tail = h('input', { type: 'checkbox', 'data-testid': 'tail' });
  const status = h('div', { 'data-testid': 'status' });
  const info = h('p', { class: 'muted', 'data-testid': 'range' });
  const results = h('div', { 'data-testid': 'messages' });
  let next = null;
  let timer = null;

  const query = (f) => {
    const q = new URLSearchParams({ partition: partition.value, limit: limit.value || 50 });
    if (filter.value) q.set('filter', filter.value);
    return `/topics/${enc}/messages?${q}&${f}`;
  };
  const load = async () => {
    status.replaceChildren();
    let f = 'from=newest';
    if (from.value === 'offset') f = `from=offset&value=${Number(offset.value || 0)}`;
    if (from.value === 'timestamp') f = `from=timestamp&value=${time.value ? Date.parse(time.value) : 0}`;
    try {
      const page = await api('GET', query(f));
      next = page.next_offset;
      info.textContent = `Partition ${page.partition}: offsets ${page.start_offset}–${page.end_offset}; `
        + `showing ${page.messages.length} from ${page.first_offset}.`;
      results.replaceChildren(table(HEADERS, page.messages.map(row)));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  };
  const poll = async () => {
    if (next === null) return;
    try {
      const page = await api('GET', query(`from=offset&value=${next}`));
      next = page.next_offset;
      const body = results.querySelector('tbody');
      for (const m of page.messages) body.append(h('tr', {}, row(m).map((c, i) => h('td', { class: i ? null : 'num' }, c))));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  };
  tail.addEventListener('change', () => {
    clearInterval(timer);
    timer = tail.checked ? setInterval(poll, 1000) : null;
  });

  const pKey = h('input', { placeholder: 'key (empty: null)', 'data-testid': 'produce-key' });
  const pValue = h('textarea', { placeholder: 'value', 'data-testid': 'produce-value' });
  const pHeaders = h('textarea', { placeholder: 'header: value (one per line)', 'data-testid': 'produce-headers' });
  const pPartition = h('select', { 'data-testid': 'produce-partition' },
    t.partitions.map((p) => h('option', { value: p.partition }, p.partition)));
  const pStatus = h('div', { 'data-testid': 'produce-status' });
  const produce = h('form', { class: 'inline', 'data-testid': 'produce' },
    h('label', {}, 'Partition', pPartition), h('label', {}, 'Key', pKey), h('label', {}, 'Value', pValue),
    h('label', {}, 'Headers', pHeaders), h('button', { type: 'submit' }, 'Produce'));
  produce.addEventListener('submit', async (e) => {
    e.preventDefault();
    pStatus.replaceChildren();
    try {
      const r = await api('POST', `/topics/${enc}/messages`, {
        partition: Number(pPartition.value), key: pKey.value === '' ? null : pKey.value,
        value: pValue.value, headers: parseHeaders(pHeaders.value),
      });
      pStatus.replaceChildren(h('div', { class: 'ok' }, `Written to partition ${r.partition} at offset ${r.offset}.`));
      if (!tail.checked && Number(partition.value) === r.partition) await load();
    } catch (err) { pStatus.replaceChildren(errorBox(err)); }
  });

  const form = h('form', { class: 'inline', 'data-testid': 'browse-form' },
    h('label', {}, 'Partition', partition), h('label', {}, 'From', from), h('label', {}, 'Offset', offset),
    h('label', {}, 'Time', time), h('label', {}, 'Limit', limit), h('label', {}, 'Filter', filter),
    h('button', { type: 'submit' }, 'Load'), h('label', {}, 'Live tail', tail));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  main.replaceChildren(h('h1', {}, `Messages in `, h('a', { href: `#/topics/${enc}` }, topic)),
    form, status, info, results, h('h2', {}, 'Produce a message'), produce, pStatus);
  await load();
  return () => clearInterval(timer);
}
