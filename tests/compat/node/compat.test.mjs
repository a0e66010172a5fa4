// kafkajs (pure JavaScript protocol implementation) against KASKADE_BOOTSTRAP.
//
// Run: KASKADE_BOOTSTRAP=127.0.0.1:9092 node --test compat.test.mjs
//
// Covers: admin createTopics / listTopics / fetchTopicMetadata / fetchTopicOffsets
// / deleteTopics; producer.send with keys and headers at acks=-1 (one message
// per send, so every record's partition and offset is known), and a
// multi-message send to explicit partitions; a consumer group (subscribe with
// fromBeginning, consumer.run) reads every record back.
//
// The tests run in order and share one topic; the last one deletes it.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import kafkajs from 'kafkajs'
import { BOOTSTRAP, TIMEOUT_MS, kafkaClient, waitFor } from './support.mjs'

const { Partitioners } = kafkajs

const PARTITIONS = 3
const topic = `compat-kafkajs-${randomBytes(6).toString('hex')}`

const kafka = kafkaClient('kaskade-compat-kafkajs')

const admin = kafka.admin()
const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner, // Java-compatible murmur2
  allowAutoTopicCreation: false,
})

/** Every record acknowledged by the broker: {key, value, headers, partition, offset}. */
const sent = []

function countsByPartition () {
  const counts = Object.fromEntries([...Array(PARTITIONS).keys()].map(p => [p, 0]))
  for (const r of sent) counts[r.partition]++
  return counts
}

describe(`kafkajs against ${BOOTSTRAP}`, { timeout: 10 * TIMEOUT_MS }, () => {
  before(async () => {
    await admin.connect()
    await producer.connect()
  })

  after(async () => {
    await producer.disconnect().catch(() => {})
    // Best-effort clean-up if the delete test did not run.
    await admin.deleteTopics({ topics: [topic], timeout: 5000 }).catch(() => {})
    await admin.disconnect().catch(() => {})
  })

  it('admin.createTopics creates a topic with 3 partitions', async () => {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: TIMEOUT_MS,
    })
    assert.equal(created, true)
  })

  it('admin.createTopics of an existing topic reports it was not created', async () => {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: false,
      timeout: TIMEOUT_MS,
    })
    assert.equal(created, false)
  })

  it('admin.listTopics includes the topic', async () => {
    const topics = await admin.listTopics()
    assert.ok(topics.includes(topic), `${topic} not in ${JSON.stringify(topics.slice(0, 20))}`)
  })

  it('admin.fetchTopicMetadata describes every partition with a leader', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] })
    assert.equal(topics.length, 1)
    assert.equal(topics[0].name, topic)
    const parts = [...topics[0].partitions].sort((a, b) => a.partitionId - b.partitionId)
    assert.deepEqual(parts.map(p => p.partitionId), [0, 1, 2])
    for (const p of parts) {
      assert.equal(p.partitionErrorCode, 0)
      assert.ok(p.leader >= 0, `partition ${p.partitionId} leader ${p.leader}`)
      assert.deepEqual(p.replicas, [p.leader])
      assert.deepEqual(p.isr, [p.leader])
    }
  })

  it('producer.send with keys and headers (acks=-1) reports partition and baseOffset', async () => {
    for (let i = 1; i <= 18; i++) {
      const rec = {
        key: `customer-${((i - 1) % 6) + 1}`,
        value: JSON.stringify({ orderId: i, amount: i * 10 }),
        headers: { 'trace-id': `trace-${i}`, origin: 'kafkajs' },
      }
      const res = await producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages: [rec] })
      assert.equal(res.length, 1, JSON.stringify(res))
      assert.equal(res[0].topicName, topic)
      assert.equal(res[0].errorCode, 0)
      sent.push({ ...rec, partition: res[0].partition, offset: Number(res[0].baseOffset) })
    }
    // Fresh topic: per partition, offsets are 0..n-1 in send order.
    for (let p = 0; p < PARTITIONS; p++) {
      const offs = sent.filter(r => r.partition === p).map(r => r.offset)
      assert.deepEqual(offs, [...offs.keys()], `partition ${p} offsets ${offs}`)
    }
    assert.ok(new Set(sent.map(r => r.partition)).size > 1, 'every key went to one partition')
  })

  it('same key goes to the same partition', () => {
    assert.ok(sent.length > 0, 'nothing was produced')
    const byKey = new Map()
    for (const r of sent) byKey.set(r.key, (byKey.get(r.key) ?? new Set()).add(r.partition))
    for (const [key, parts] of byKey) assert.equal(parts.size, 1, `${key} -> ${[...parts]}`)
  })

  it('producer.send of a multi-message batch to explicit partitions', async () => {
    const before = countsByPartition()
    const messages = []
    for (let i = 0; i < 9; i++) {
      messages.push({
        partition: i % PARTITIONS,
        key: i % 2 ? `batch-${i}` : null,
        value: i === 4 ? '' : `batch-value-${i}`,
        headers: { n: String(i) },
      })
    }
    const res = await producer.send({ topic, acks: -1, timeout: TIMEOUT_MS, messages })
    assert.equal(res.length, PARTITIONS, JSON.stringify(res))
    for (const r of res) {
      assert.equal(r.errorCode, 0)
      assert.equal(Number(r.baseOffset), before[r.partition], `baseOffset of partition ${r.partition}`)
    }
    const next = { ...before }
    for (const m of messages) sent.push({ ...m, offset: next[m.partition]++ })
  })

  it('admin.fetchTopicOffsets: high watermark equals records sent per partition', async () => {
    const counts = countsByPartition()
    const offsets = await admin.fetchTopicOffsets(topic)
    const byPart = Object.fromEntries(offsets.map(o => [o.partition, o]))
    assert.deepEqual(Object.keys(byPart).map(Number).sort(), [0, 1, 2])
    for (let p = 0; p < PARTITIONS; p++) {
      assert.equal(byPart[p].low, '0', `low watermark of partition ${p}`)
      assert.equal(byPart[p].high, String(counts[p]), `high watermark of partition ${p}`)
      assert.equal(byPart[p].offset, String(counts[p]))
    }
  })

  it('consumer (group) reads back every record exactly',
    async () => {
      const consumer = kafka.consumer({ groupId: `compat-kafkajs-group-${randomBytes(6).toString('hex')}` })
      const got = new Map()
      try {
        await consumer.connect()
        await consumer.subscribe({ topic, fromBeginning: true })
        await consumer.run({
          eachMessage: async ({ partition, message }) => {
            got.set(`${partition}/${message.offset}`, message)
          },
        })
        await waitFor(`${sent.length} records`, () => got.size >= sent.length)
      } finally {
        await consumer.disconnect().catch(() => {})
      }
      assert.equal(got.size, sent.length)
      for (const r of sent) {
        const m = got.get(`${r.partition}/${r.offset}`)
        assert.ok(m, `nothing read at ${r.partition}/${r.offset}`)
        assert.equal(m.key === null ? null : m.key.toString(), r.key ?? null)
        assert.equal(m.value.toString(), r.value)
        const headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, v.toString()]))
        assert.deepEqual(headers, r.headers)
      }
    })

  it('admin.deleteTopics removes the topic', async () => {
    await admin.deleteTopics({ topics: [topic], timeout: TIMEOUT_MS })
    await waitFor(`${topic} to disappear`, async () => !(await admin.listTopics()).includes(topic))
  })
})
