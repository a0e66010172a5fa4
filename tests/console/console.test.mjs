// The web console in headless Chromium against a running `kaskade serve`,
// cross-checked with a real Kafka client (kafkajs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, withPage, open, kafka, unique } from './support.mjs';

let browser;
const admin = kafka.admin();
const producer = kafka.producer();

before(async () => {
  browser = await launch();
  await admin.connect();
  await producer.connect();
});

after(async () => {
  await producer.disconnect();
  await admin.disconnect();
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

test('every page renders without console errors', async () => {
  const topic = unique('pages');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  await withPage(browser, 'every-page', async (page) => {
    for (const hash of ['#/overview', '#/topics', `#/topics/${topic}`, `#/topics/${topic}/messages`, '#/groups',
      '#/transactions']) {
      await open(page, hash);
      assert.equal(await page.locator('[data-testid=error]').count(), 0, `${hash} shows an error`);
      assert.ok((await page.locator('main h1').textContent()).length > 0, `${hash} has a heading`);
    }
    await open(page, '#/overview');
    assert.match(await page.locator('[data-testid=brokers]').textContent(), /127\.0\.0\.1/);
  });
});

test('a topic created from the page exists for a Kafka client, and deleting it asks first', async () => {
  const topic = unique('created');
  await withPage(browser, 'create-topic', async (page) => {
    await open(page, '#/topics');
    await page.fill('[data-testid=new-topic-name]', topic);
    await page.fill('[data-testid=new-topic-partitions]', '3');
    await page.click('[data-testid=create-topic] button');
    await page.waitForSelector(`main[data-ready="#/topics/${topic}"]`);
    assert.equal(await page.locator('[data-testid=partitions] tbody tr').count(), 3);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(meta.topics[0].partitions.length, 3);

    let asked = null;
    page.removeAllListeners('dialog');
    page.on('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.click('[data-testid=delete-topic]');
    await page.waitForSelector('main[data-ready="#/topics"]');
    assert.match(asked, /Delete topic/);
    assert.ok(!(await admin.listTopics()).includes(topic), 'the topic is gone for a Kafka client');
  });
});

test("creating an existing topic shows Kafka's error and message", async () => {
  const topic = unique('dup');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await withPage(browser, 'duplicate-topic', async (page) => {
    await open(page, '#/topics');
    await page.fill('[data-testid=new-topic-name]', topic);
    await page.click('[data-testid=create-topic] button');
    const text = await waitText(page, '[data-testid=status] [data-testid=error]', (t) => t.length > 0);
    assert.match(text, /TopicAlreadyExists/);
    assert.match(text, new RegExp(`${topic}.*already exists`));
  }, { allow: [/status of 409/] });
});

test('an unknown topic shows the broker error, not a blank page', async () => {
  await withPage(browser, 'unknown-topic', async (page) => {
    await open(page, '#/topics/no-such-topic-here');
    assert.match(await page.locator('[data-testid=error]').textContent(), /UnknownTopicOrPartition/);
  }, { allow: [/status of 404/] });
});

test('a message produced from the page is shown by the browser and read by a Kafka client', async () => {
  const topic = unique('produce');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await withPage(browser, 'produce', async (page) => {
    await open(page, `#/topics/${topic}/messages`);
    await page.fill('[data-testid=produce-key]', 'order-1');
    await page.fill('[data-testid=produce-value]', '{"amount":42,"currency":"EUR"}');
    await page.fill('[data-testid=produce-headers]', 'source: console');
    await page.click('[data-testid=produce] button');
    await waitText(page, '[data-testid=produce-status]', (t) => /offset 0/.test(t));
    const rows = await waitText(page, '[data-testid=messages] tbody', (t) => t.includes('order-1'));
    assert.match(rows, /"amount": 42/, 'JSON is pretty-printed');
    assert.match(rows, /source: console/);

    // The filter keeps only matching records.
    await page.fill('[data-testid=produce-key]', 'order-2');
    await page.fill('[data-testid=produce-value]', 'plain text');
    await page.fill('[data-testid=produce-headers]', '');
    await page.click('[data-testid=produce] button');
    await waitText(page, '[data-testid=messages] tbody', (t) => t.includes('order-2'));
    await page.fill('[data-testid=filter]', 'EUR');
    await page.click('[data-testid=browse-form] button');
    await waitText(page, '[data-testid=messages] tbody', (t) => t.includes('order-1') && !t.includes('order-2'));
  });
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(offsets[0].high, '2');
});

test('live tail shows records a Kafka client produces', async () => {
  const topic = unique('tail');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await withPage(browser, 'live-tail', async (page) => {
    await open(page, `#/topics/${topic}/messages`);
    await page.check('[data-testid=tail]');
    await producer.send({ topic, messages: [{ key: 'live', value: Buffer.from([0, 1, 2, 255]) }] });
    const rows = await waitText(page, '[data-testid=messages] tbody', (t) => t.includes('live'));
    assert.match(rows, /000102ff/, 'binary values are shown as hex');
  });
});

test("a consumer group's lag appears, falls to zero, and a reset is refused while it has members", async () => {
  const topic = unique('lag');
  const groupId = unique('group');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await producer.send({ topic, messages: Array.from({ length: 10 }, (_, i) => ({ value: `v${i}` })) });
  const consumer = kafka.consumer({ groupId, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await consumer.run({ eachMessage: async () => { seen++; } });
  try {
    await withPage(browser, 'group-lag', async (page) => {
      await open(page, `#/groups/${groupId}`);
      await waitText(page, '[data-testid=state]', (t) => t === 'Stable');
      await waitText(page, '[data-testid=total-lag]', (t) => t === '0');
      // Paused, the group commits nothing while records arrive: lag appears.
      consumer.pause([{ topic }]);
      await producer.send({ topic, messages: Array.from({ length: 25 }, (_, i) => ({ value: `w${i}` })) });
      await waitText(page, '[data-testid=total-lag]', (t) => t === '25');
      assert.match(await page.locator('[data-testid=members]').textContent(), new RegExp(`${topic}\\[0\\]`));
      assert.match(await page.locator('[data-testid=offsets]').textContent(), /10\s*35\s*25/);

      // Members are active: the reset is refused with Kafka's tool message.
      await page.click('[data-testid=reset] button');
      const refused = await waitText(page, '[data-testid=status] [data-testid=error]', (t) => t.length > 0);
      assert.match(refused, /can only be reset if the group .* is inactive, but the current state is Stable/);

      consumer.resume([{ topic }]);
      await waitText(page, '[data-testid=total-lag]', (t) => t === '0');
    }, { allow: [/status of 409/] });
  } finally {
    await consumer.disconnect();
  }
  assert.ok(seen >= 35, `the consumer read ${seen} records`);

  // Without members the reset goes through; the lag is back to every record.
  await withPage(browser, 'group-reset', async (page) => {
    await open(page, `#/groups/${groupId}`);
    await waitText(page, '[data-testid=state]', (t) => t === 'Empty');
    await page.selectOption('[data-testid=reset-to]', 'earliest');
    await page.click('[data-testid=reset] button');
    await waitText(page, '[data-testid=total-lag]', (t) => t === '35');
  });
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(committed[0].partitions[0].offset, '0');
});

test("an open transaction is listed with its partitions until it ends; a topic config edit is an override", async () => {
  const topic = unique('txn');
  const transactionalId = unique('tx');
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const txProducer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await txProducer.connect();
  try {
    const tx = await txProducer.transaction();
    await tx.send({ topic, messages: [{ partition: 1, value: 'in a transaction' }] });
    await withPage(browser, 'transactions', async (page) => {
      await open(page, '#/transactions');
      const row = await waitText(page, '[data-testid=transactions]', (t) => t.includes(transactionalId));
      assert.match(row, new RegExp(`Ongoing.*${topic}\\[1\\]`));
      await tx.abort();
      await waitText(page, '[data-testid=transactions]', (t) => !t.includes(transactionalId));
    });
  } finally {
    await txProducer.disconnect();
  }

  await withPage(browser, 'config-edit', async (page) => {
    await open(page, `#/topics/${topic}`);
    const row = page.locator('[data-testid=configs] tr', { has: page.locator('input[aria-label="retention.ms"]') });
    await row.locator('input').fill('3600000');
    await row.locator('button', { hasText: /^Set$/ }).click();
    // Shown as set on the topic (bold name, its source) once the page reloads it.
    await page.locator('[data-testid=configs] span.override', { hasText: /^retention\.ms$/ }).waitFor({ timeout: 15000 });
    const described = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false });
    assert.equal(described.resources[0].configEntries[0].configValue, '3600000');
    // An invalid value is refused with the broker's message.
    const again = page.locator('[data-testid=configs] tr', { has: page.locator('input[aria-label="retention.ms"]') });
    await again.locator('input').fill('soon');
    await again.locator('button', { hasText: /^Set$/ }).click();
    const err = await waitText(page, '[data-testid=status] [data-testid=error]', (t) => t.length > 0);
    assert.match(err, /InvalidConfig/);
  }, { allow: [/status of 400/] });
});
