// Measures console page load times in headless Chromium:
//  - a topic with 1,000 partitions (#/topics/<topic>: partitions, offsets, configs);
//  - the message browser on 1 MiB records (newest 50 of a partition).
// Usage: CONSOLE_URL=http://host:port KAFKA_BROKER=host:port node measure.mjs
// Prints the median and max of RUNS loads each (time from navigation until the
// page has rendered its table).
import { launch, kafka, open, unique, CONSOLE_URL } from './support.mjs';

const RUNS = Number(process.env.RUNS || 5);
const MIB = 1 << 20;

async function time(page, hash, ready) {
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto('about:blank');
    const t0 = performance.now();
    await open(page, hash);
    await page.waitForFunction(ready, null, { timeout: 60000 });
    out.push(performance.now() - t0);
  }
  out.sort((a, b) => a - b);
  return `median ${out[Math.floor(out.length / 2)].toFixed(0)} ms, max ${out[out.length - 1].toFixed(0)} ms (${RUNS} loads)`;
}

const admin = kafka.admin();
const producer = kafka.producer();
await admin.connect();
await producer.connect();
const browser = await launch();
const page = await browser.newPage();
try {
  const big = unique('p1000');
  await admin.createTopics({ topics: [{ topic: big, numPartitions: 1000 }] });
  console.log(`topic page, 1000 partitions (${CONSOLE_URL}): `
    + await time(page, `#/topics/${big}`, () => document.querySelectorAll('[data-testid=partitions] tbody tr').length === 1000));

  const large = unique('mib');
  await admin.createTopics({ topics: [{ topic: large, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(2 * MIB) }] }] });
  const value = Buffer.alloc(MIB, 'x');
  for (let i = 0; i < 50; i++) await producer.send({ topic: large, messages: [{ key: `k${i}`, value }] });
  console.log('message browser, newest 50 of 1 MiB records: '
    + await time(page, `#/topics/${large}/messages`, () => document.querySelectorAll('[data-testid=messages] tbody tr').length === 50));
  const page50 = await fetch(`${CONSOLE_URL}/api/topics/${large}/messages?partition=0&limit=50`);
  console.log(`  (its API answer: ${(await page50.arrayBuffer()).byteLength} bytes for 50 MiB of records)`);
} finally {
  await browser.close();
  await producer.disconnect();
  await admin.disconnect();
}
