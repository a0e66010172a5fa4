// Overview: brokers, disk usage per log directory, throughput.
import { api, h, table, fmtBytes, fmtDuration, fmtRate, lineChart } from './lib.js';

export async function render(main) {
  const draw = async () => {
    const o = await api('GET', '/overview');
    const t = o.throughput;
    main.replaceChildren(
      h('h1', {}, 'Overview'),
      h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Cluster'), h('div', {}, o.cluster_id)),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Brokers'), h('div', { class: 'big' }, o.brokers.length)),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Topics'), h('div', { class: 'big', 'data-testid': 'topic-count' }, o.topics)),
        h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Partitions'), h('div', { class: 'big' }, o.partitions))),
      h('h2', {}, 'Brokers'),
      table(['ID', 'Address', 'Rack', 'Version', 'Uptime', 'Role'],
        o.brokers.map((b) => [b.id, `${b.host}:${b.port}`, b.rack ?? '–', b.version ?? '–',
          fmtDuration(b.uptime_ms), b.controller ? 'controller' : '']), { 'data-testid': 'brokers' }),
      h('p', { class: 'muted' }, 'Version and uptime as each broker registered them (– for a broker whose registration predates them).'),
      h('h2', {}, 'Disk usage per log directory'),
      table(['Broker', 'Directory', { label: 'Partition data', num: true }, { label: 'Free', num: true },
        { label: 'Size', num: true }, 'Error'],
      o.log_dirs.map((d) => [d.broker, d.path, fmtBytes(d.used_bytes), fmtBytes(d.usable_bytes),
        fmtBytes(d.total_bytes), d.error ?? '']), { 'data-testid': 'log-dirs' }),
      h('h2', {}, `Throughput (sampled every ${o.sample_interval_ms / 1000}s)`),
      lineChart([
        { name: 'records in/s', color: '#2563eb', points: t.map((p) => [p.time_ms, p.records_in_per_sec]) },
        { name: 'records consumed/s', color: '#16a34a', points: t.map((p) => [p.time_ms, p.records_out_per_sec]) },
      ]),
      lineChart([{ name: 'bytes in/s', color: '#9333ea', points: t.map((p) => [p.time_ms, p.bytes_in_per_sec]) }],
        { unit: ' B/s' }),
      h('p', { class: 'muted' }, t.length
        ? `Last: ${fmtRate(t[t.length - 1].records_in_per_sec)} records/s in, ${fmtBytes(t[t.length - 1].bytes_in_per_sec)}/s in, `
          + `${fmtRate(t[t.length - 1].records_out_per_sec)} records/s consumed (offsets committed by groups).`
        : 'Rates appear after two samples.'));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
