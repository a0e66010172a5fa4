// Topics: list, create, delete (with confirmation); one topic's partitions and configs.
import { api, h, table, errorBox, fmtBytes, fmtRate } from './lib.js';

export async function renderList(main) {
  const rows = await api('GET', '/topics');
  const status = h('div', { 'data-testid': 'status' });
  const name = h('input', { name: 'name', required: true, placeholder: 'orders', 'data-testid': 'new-topic-name' });
  const partitions = h('input', { name: 'partitions', type: 'number', min: 1, placeholder: 'default', 'data-testid': 'new-topic-partitions' });
  const rf = h('input', { name: 'replication', type: 'number', min: 1, placeholder: 'default' });
  const form = h('form', { class: 'inline', 'data-testid': 'create-topic' },
    h('label', {}, 'Name', name), h('label', {}, 'Partitions', partitions), h('label', {}, 'Replication factor', rf),
    h('button', { type: 'submit' }, 'Create topic'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.replaceChildren();
    try {
      await api('POST', '/topics', {
        name: name.value.trim(),
        partitions: partitions.value ? Number(partitions.value) : undefined,
        replication_factor: rf.value ? Number(rf.value) : undefined,
      });
      location.hash = `#/topics/${encodeURIComponent(name.value.trim())}`;
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  });
  main.replaceChildren(
    h('h1', {}, 'Topics'), form, status,
    table(['Name', { label: 'Partitions', num: true }, { label: 'Replication', num: true }, { label: 'Size', num: true },
      { label: 'Records', num: true }, { label: 'Records/s in', num: true }, ''],
    rows.map((t) => [
      h('a', { href: `#/topics/${encodeURIComponent(t.name)}` }, t.name), t.partitions, t.replication_factor,
      fmtBytes(t.size_bytes), t.records, fmtRate(t.records_per_sec),
      t.internal ? h('span', { class: 'tag' }, 'internal') : '',
    ]), { 'data-testid': 'topics' }));
}

function configEditor(topic, configs, status, refresh) {
  return table(['Name', 'Value', 'Default', 'Source', ''], configs.map((c) => {
    const input = h('input', { value: c.value ?? '', size: 24, disabled: c.read_only || c.sensitive, 'aria-label': c.name });
    const save = h('button', { class: 'plain', disabled: c.read_only, onclick: async () => {
      status.replaceChildren();
      try {
        await api('PUT', `/topics/${encodeURIComponent(topic)}/configs`, { set: { [c.name]: input.value } });
        await refresh();
      } catch (err) { status.replaceChildren(errorBox(err)); }
    } }, 'Set');
    const reset = c.is_override ? h('button', { class: 'plain', onclick: async () => {
      status.replaceChildren();
      try {
        await api('PUT', `/topics/${encodeURIComponent(topic)}/configs`, { delete: [c.name] });
        await refresh();
      } catch (err) { status.replaceChildren(errorBox(err)); }
    } }, 'Reset to default') : '';
    return [h('span', { class: c.is_override ? 'override' : null }, c.name), input,
      c.default_value ?? '–', c.source, h('span', {}, save, ' ', reset)];
  }), { 'data-testid': 'configs' });
}

/** A partition's health as Kafka's tools name it: offline (no leader),
 * under-replicated (ISR smaller than the replicas), else in sync. */
function partitionState(p) {
  if (p.leader < 0) return h('span', { class: 'tag bad' }, 'offline');
  if (p.isr.length < p.replicas.length) return h('span', { class: 'tag warn' }, 'under-replicated');
  return 'in sync';
}

export async function renderTopic(main, topic) {
  const draw = async () => {
    const t = await api('GET', `/topics/${encodeURIComponent(topic)}`);
    const status = h('div', { 'data-testid': 'status' });
    const del = h('button', { class: 'danger', 'data-testid': 'delete-topic', onclick: async () => {
      if (!window.confirm(`Delete topic '${topic}' and all its records? This cannot be undone.`)) return;
      try {
        await api('DELETE', `/topics/${encodeURIComponent(topic)}`);
        location.hash = '#/topics';
      } catch (err) { status.replaceChildren(errorBox(err)); }
    } }, 'Delete topic');
    main.replaceChildren(
      h('h1', {}, `Topic ${t.name}`),
      h('p', {}, h('a', { href: `#/topics/${encodeURIComponent(topic)}/messages`, 'data-testid': 'browse' }, 'Browse messages'),
        ' · ', h('span', { class: 'muted' }, `id ${t.id}`), ' ', t.internal ? h('span', { class: 'tag' }, 'internal') : '',
        ' ', del),
      status,
      h('h2', {}, 'Partitions'),
      table([{ label: 'Partition', num: true }, 'Leader', 'Replicas', 'ISR', 'State', { label: 'Start offset', num: true },
        { label: 'End offset', num: true }],
      t.partitions.map((p) => [p.partition, p.leader >= 0 ? p.leader : 'none', p.replicas.join(', '), p.isr.join(', '),
        partitionState(p), p.start_offset ?? '–', p.end_offset ?? '–']), { 'data-testid': 'partitions' }),
      h('h2', {}, 'Configuration'),
      h('p', { class: 'muted' }, 'Bold names are set on this topic; others come from the broker or Kafka\'s defaults.'),
      configEditor(topic, t.configs, status, draw));
  };
  await draw();
}
