// The web console of node 1 of a three-node cluster (started by run.sh with
// scripts/cluster.sh), in headless Chromium, cross-checked with kafkajs:
// every broker and every broker's log directories on the overview; produce
// and browse on a partition another node leads; a consumer group and an
// open transaction whose coordinators are other nodes; then node 3 is killed with SIGKILL and the
// topic pages show the shrunken ISR, under-replicated partitions and an
// offline partition (replication factor 1 on node 3), whose browser shows
// Kafka's error. Every wait is on a condition with a deadline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { launch, withPage, open, unique } from './support.mjs';

const BROKERS = (process.env.KAFKA_BROKERS || '').split(',').filter(Boolean);
const CLUSTER_DIR = process.env.CLUSTER_DIR;
const CLUSTER_SH = process.env.CLUSTER_SH;
/** The node serving the console. */
const CONSOLE_NODE = 1;

const kafka = new Kafka({ clientId: 'console-cluster-tests', brokers: BROKERS, logLevel: logLevel.NOTHING });
const admin = kafka.admin();
const producer = kafka.producer();
let browser;

before(async () => {
  assert.equal(BROKERS.length, 3, 'KAFKA_BROKERS names three brokers');
  browser = await launch();
  await admin.connect();
  await producer.connect();
});

after(async () => {
  await producer.disconnect().catch(() => {});
  await admin.disconnect().catch(() => {});
  await browser?.close();
});

/** The text of an element, polled until `pred` holds or `ms` pass. */
async function waitText(page, selector, pred, ms = 20000) {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = (await page.locator(selector).first().textContent().catch(() => '')) ?? '';
    if (pred(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`${selector}: condition never held; last text: ${last}`);
}

/** Reopens `hash` (a page drawn once per visit) until `read(page)` gives a
 * value `pred` accepts, or `ms` pass. */
async function waitPage(page, hash, read, pred, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    // Away first: opening the URL the page is at would not draw it again.
    await page.goto('about:blank');
    await open(page, hash);
    last = await read(page);
    if (pred(last)) return last;
    await page.waitForTimeout(300);
  }
  throw new Error(`${hash}: condition never held; last: ${JSON.stringify(last)}`);
}

/** The cells of the partition table's row for `partition`, once `pred` holds for them. */
function waitPartitionRow(page, hash, partition, pred) {
  const read = (p) => p.locator('[data-testid=partitions] tbody tr').nth(partition).locator('td').allTextContents();
  return waitPage(page, hash, read, (cells) => cells.length > 0 && pred(cells));
}

/** Java's String.hashCode, with which Kafka places a group on a __consumer_offsets partition. */
function javaHash(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** A key whose internal-topic partition (Kafka's hash placement over
 * `partitions`) another node than the console's leads, per `topic`'s metadata. */
async function keyLedElsewhere(internalTopic, prefix) {
  let meta;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    meta = await admin.fetchTopicMetadata({ topics: [internalTopic] }).catch(() => null);
    if (meta?.topics[0]?.partitions.every((p) => p.leader >= 0)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(meta, `${internalTopic} exists`);
  const parts = meta.topics[0].partitions;
  const leaderOf = new Map(parts.map((p) => [p.partitionId, p.leader]));
  for (let i = 0; i < 200; i++) {
    const key = unique(prefix);
    const leader = leaderOf.get((javaHash(key) & 0x7fffffff) % parts.length);
    if (leader !== undefined && leader !== CONSOLE_NODE && leader >= 0) return [key, leader];
  }
  throw new Error(`no ${prefix} key placed on another node`);
}

test('the overview lists every broker with its rack, version and uptime, and every broker\'s log directories', async () => {
  await withPage(browser, 'cluster-overview', async (page) => {
    await open(page, '#/overview');
    const rows = await page.locator('[data-testid=brokers] tbody tr').allTextContents();
    assert.equal(rows.length, 3, rows.join('\n'));
    for (const id of [1, 2, 3]) {
      const row = rows.find((r) => r.startsWith(String(id)));
      assert.ok(row, `broker ${id} listed: ${rows.join('\n')}`);
      assert.match(row, new RegExp(`127\\.0\\.0\\.1:\\d+rack-${id}`));
    }
    // Columns: ID, Address, Rack, Version, Uptime, Role. Each broker's
    // version and uptime come from its own registration, not this node's.
    const cells = await page.locator('[data-testid=brokers] tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    for (const [id, , , version, uptime] of cells) {
      assert.match(version, /^\d+\.\d+\.\d+/, `broker ${id} shows a version: ${JSON.stringify(cells)}`);
      assert.match(uptime, /^(\d+s|\d+m \d+s|\d+h \d+m)$/, `broker ${id} shows an uptime: ${JSON.stringify(cells)}`);
    }
    const dirs = await page.locator('[data-testid=log-dirs] tbody tr').allTextContents();
    for (const id of [1, 2, 3]) {
      const dir = dirs.find((d) => d.startsWith(String(id)));
      assert.ok(dir, `broker ${id} has a log directory row: ${dirs.join('\n')}`);
      assert.match(dir, new RegExp(`node-${id}`), 'its own directory, asked of that broker');
    }
  });
});

test('produce and browse work on a partition another node leads', async () => {
  const topic = unique('remote-leader');
  // Partition 0 on nodes 2 and 3, led by 2 (the first replica); partition 1 led by 3.
  await admin.createTopics({
    topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [2, 3, 1] }, { partition: 1, replicas: [3, 1, 2] }] }],
  });
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const leaders = meta.topics[0].partitions.sort((a, b) => a.partitionId - b.partitionId).map((p) => p.leader);
  assert.ok(leaders.every((l) => l !== CONSOLE_NODE), `partitions led elsewhere: ${leaders}`);
  await withPage(browser, 'cluster-produce', async (page) => {
    await open(page, `#/topics/${topic}/messages`);
    for (const p of [0, 1]) {
      await page.selectOption('[data-testid=produce-partition]', String(p));
      await page.fill('[data-testid=produce-key]', `k${p}`);
      await page.fill('[data-testid=produce-value]', `{"to":"partition ${p}"}`);
      await page.click('[data-testid=produce] button');
      await waitText(page, '[data-testid=produce-status]', (t) => t.includes(`partition ${p} at offset 0`));
    }
    await page.selectOption('[data-testid=partition]', '1');
    await page.click('[data-testid=browse-form] button');
    const rows = await waitText(page, '[data-testid=messages] tbody', (t) => t.includes('k1'));
    assert.match(rows, /"to": "partition 1"/);
  });
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.deepEqual(offsets.sort((a, b) => a.partition - b.partition).map((o) => o.high), ['1', '1']);
});

test('a consumer group coordinated by another node is listed and described', async () => {
  const topic = unique('remote-group');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }] });
  await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ value: `v${i}` })) });
  // FindCoordinator (behind fetchOffsets) creates __consumer_offsets.
  await admin.fetchOffsets({ groupId: unique('warmup'), topics: [topic] });
  const [groupId, coordinator] = await keyLedElsewhere('__consumer_offsets', 'far-group');
  const consumer = kafka.consumer({ groupId, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async () => {} });
  try {
    await withPage(browser, 'cluster-group', async (page) => {
      // ListGroups of node 1 alone would not name it: every broker is asked.
      const listed = await waitPage(page, '#/groups', (p) => p.locator('[data-testid=groups]').textContent(),
        (t) => t.includes(groupId));
      assert.ok(listed.includes(groupId), `group ${groupId} (coordinator ${coordinator}) listed`);
      await open(page, `#/groups/${groupId}`);
      await waitText(page, '[data-testid=state]', (t) => t === 'Stable');
      await waitText(page, '[data-testid=total-lag]', (t) => t === '0');
      assert.match(await page.locator('[data-testid=members]').textContent(), new RegExp(`${topic}\\[0\\]`));
    });
  } finally {
    await consumer.disconnect();
  }
});

test('an open transaction coordinated by another node is listed until it ends', async () => {
  const topic = unique('remote-txn');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 3 }] });
  // A first transactional producer makes __transaction_state exist.
  const warm = kafka.producer({ transactionalId: unique('warm-tx'), idempotent: true, maxInFlightRequests: 1 });
  await warm.connect();
  await (await warm.transaction()).abort();
  await warm.disconnect();
  const [transactionalId, coordinator] = await keyLedElsewhere('__transaction_state', 'far-tx');
  const txProducer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await txProducer.connect();
  try {
    const tx = await txProducer.transaction();
    await tx.send({ topic, messages: [{ value: 'in a transaction' }] });
    await withPage(browser, 'cluster-transactions', async (page) => {
      const read = (p) => p.locator('[data-testid=transactions]').textContent();
      const row = await waitPage(page, '#/transactions', read, (t) => t.includes(transactionalId));
      assert.match(row, new RegExp(`Ongoing.*${topic}\\[0\\]`), `coordinator ${coordinator}`);
      await tx.abort();
      await waitPage(page, '#/transactions', read, (t) => !t.includes(transactionalId));
    });
  } finally {
    await txProducer.disconnect();
  }
});

test('after node 3 is killed, the ISR shrinks, partitions show under-replicated and an RF 1 partition offline', async () => {
  const replicated = unique('rf3');
  const single = unique('rf1');
  await admin.createTopics({
    topics: [
      { topic: replicated, replicaAssignment: [{ partition: 0, replicas: [1, 2, 3] }] },
      { topic: single, replicaAssignment: [{ partition: 0, replicas: [3] }] },
    ],
  });
  await producer.send({ topic: replicated, acks: -1, messages: [{ value: 'before the crash' }] });
  await withPage(browser, 'cluster-node-down', async (page) => {
    await waitPartitionRow(page, `#/topics/${replicated}`, 0, (c) => c[3] === '1, 2, 3' && c[4] === 'in sync');
    execFileSync('bash', [CLUSTER_SH, 'kill9', CLUSTER_DIR, '3']);
    const row = await waitPartitionRow(page, `#/topics/${replicated}`, 0, (c) => !c[3].includes('3'));
    assert.equal(row[1], '1', 'the leader stays');
    assert.equal(row[2], '1, 2, 3', 'the replicas stay');
    assert.equal(row[4], 'under-replicated');
    const offline = await waitPartitionRow(page, `#/topics/${single}`, 0, (c) => c[4] === 'offline');
    assert.equal(offline[1], 'none');
    // Its messages cannot be read: Kafka's error and message, not a blank page.
    await open(page, `#/topics/${single}/messages`);
    const err = await waitText(page, '[data-testid=error]', (t) => t.length > 0);
    assert.match(err, /LeaderNotAvailable.*offline/);
    // The overview still answers, for the live brokers.
    await open(page, '#/overview');
    const dirs = await page.locator('[data-testid=log-dirs] tbody tr').allTextContents();
    assert.ok(dirs.some((d) => d.startsWith('2') && d.includes('node-2')), dirs.join('\n'));
  }, { allow: [/status of 503/] });
});
