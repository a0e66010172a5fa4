// Open transactions with their partitions and age.
import { api, h, table, fmtDuration, fmtTime } from './lib.js';

export async function render(main) {
  const draw = async () => {
    const txns = await api('GET', '/transactions');
    main.replaceChildren(
      h('h1', {}, 'Open transactions'),
      txns.length ? table(['Transactional id', 'Producer id/epoch', 'State', 'Started', 'Age', 'Timeout', 'Partitions'],
        txns.map((t) => [t.transactional_id, `${t.producer_id}/${t.producer_epoch}`, t.state, fmtTime(t.start_time_ms),
          fmtDuration(t.age_ms), fmtDuration(t.timeout_ms),
          t.partitions.map(([topic, ps]) => `${topic}[${ps.join(',')}]`).join(' ')]), { 'data-testid': 'transactions' })
        : h('p', { class: 'muted', 'data-testid': 'transactions' }, 'No open transactions.'));
  };
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
