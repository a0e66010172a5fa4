// Consumer groups: list; one group's members, offsets, lag and lag chart; reset.
import { api, h, table, errorBox, lineChart } from './lib.js';

export async function renderList(main) {
  const draw = async () => {
    const groups = await api('GET', '/groups');
    main.replaceChildren(h('h1', {}, 'Consumer groups'),
      groups.length ? table(['Group', 'State', 'Protocol type', { label: 'Members', num: true }, { label: 'Lag', num: true }],
        groups.map((g) => [h('a', { href: `#/groups/${encodeURIComponent(g.group_id)}` }, g.group_id), g.state,
          g.protocol_type, g.members, g.lag]), { 'data-testid': 'groups' })
        : h('p', { class: 'muted', 'data-testid': 'groups' }, 'No consumer groups.'));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 3000);
  return () => clearInterval(timer);
}

export async function renderGroup(main, group) {
  const enc = encodeURIComponent(group);
  const status = h('div', { 'data-testid': 'status' });
  const body = h('div');
  const to = h('select', { 'data-testid': 'reset-to' }, ['earliest', 'latest', 'offset'].map((v) => h('option', { value: v }, v)));
  const offset = h('input', { type: 'number', min: 0, placeholder: 'offset' });
  const topic = h('input', { placeholder: 'all topics' });
  const reset = h('form', { class: 'inline', 'data-testid': 'reset' }, h('label', {}, 'Topic', topic),
    h('label', {}, 'Reset to', to), h('label', {}, 'Offset', offset), h('button', { type: 'submit', class: 'danger' }, 'Reset offsets'));
  reset.addEventListener('submit', async (e) => {
    e.preventDefault();
    status.replaceChildren();
    if (!window.confirm(`Reset the committed offsets of group '${group}'?`)) return;
    try {
      await api('POST', `/groups/${enc}/reset`, { to: to.value, topic: topic.value || undefined,
        offset: offset.value === '' ? undefined : Number(offset.value) });
      status.replaceChildren(h('div', { class: 'ok' }, 'Offsets reset.'));
      await draw();
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  const draw = async () => {
    const g = await api('GET', `/groups/${enc}`);
    const total = g.offsets.reduce((n, o) => n + (o.lag ?? 0), 0);
    body.replaceChildren(
      h('p', {}, 'State ', h('b', { 'data-testid': 'state' }, g.state), ` · ${g.protocol_type || 'no protocol'} `,
        g.protocol ? `(${g.protocol})` : '', ' · total lag ', h('b', { 'data-testid': 'total-lag' }, total)),
      h('h2', {}, 'Members'),
      table(['Member', 'Client id', 'Host', 'Assignment'], g.members.map((m) => [m.member_id, m.client_id, m.host,
        m.assignment.map(([t, ps]) => `${t}[${ps.join(',')}]`).join(' ')]), { 'data-testid': 'members' }),
      h('h2', {}, 'Offsets and lag'),
      table(['Topic', { label: 'Partition', num: true }, { label: 'Committed', num: true }, { label: 'End offset', num: true },
        { label: 'Lag', num: true }], g.offsets.map((o) => [o.topic, o.partition, o.committed, o.end_offset ?? '–', o.lag ?? '–']),
      { 'data-testid': 'offsets' }),
      h('h2', {}, 'Lag over time'),
      lineChart([{ name: 'total lag', color: '#dc2626', points: g.lag_history.map((p) => [p.time_ms, p.lag]) }]));
  };
  main.replaceChildren(h('h1', {}, `Group ${group}`), body, h('h2', {}, 'Reset offsets'),
    h('p', { class: 'muted' }, 'Kafka allows a reset only while the group has no members.'), reset, status);
  try {
    await draw();
  } catch (err) {
    body.replaceChildren(errorBox(err));
  }
  const timer = setInterval(() => draw().catch((err) => status.replaceChildren(errorBox(err))), 2000);
  return () => clearInterval(timer);
}
