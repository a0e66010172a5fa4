// kafkajs transactions against KASKADE_BOOTSTRAP.
//
// Run: KASKADE_BOOTSTRAP=127.0.0.1:9092 node --test transactions.test.mjs
//
// As kafkajs documents it: kafka.producer({ transactionalId, idempotent: true,
// maxInFlightRequests: 1 }), producer.transaction(), transaction.send,
// transaction.sendOffsets, transaction.commit / transaction.abort, and
// consumers with readUncommitted false (the default) or true.
//
// A "process the input" flow: six input records; transaction 1 writes the
// outputs of inputs 0-2 and the group's input offset 3, commits; transaction 2
// writes inputs 3-4 and offset 5, aborts; transaction 3 redoes input 3 with
// offset 4, commits. kafkajs awaits every produce response, so the aborted
// records are in the log. Then: the group's committed offset is 3 after the
// abort and 4 at the end, a read_committed consumer reads exactly the 4
// committed outputs, a read_uncommitted one all 6, and a consumer of the group
// resumes the input at offset 4.
//
// Everything (topics, group, transactional id) is unique to the run.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BOOTSTRAP, TIMEOUT_MS, kafkaClient, waitFor } from './support.mjs'

const uid = () => randomBytes(6).toString('hex')
const input = `compat-kafkajs-txn-in-${uid()}`
const output = `compat-kafkajs-txn-out-${uid()}`
const group = `compat-kafkajs-txn-group-${uid()}`
const transactionalId = `compat-kafkajs-txn-id-${uid()}`

const kafka = kafkaClient('kaskade-compat-kafkajs-txn')

const admin = kafka.admin()
const plain = kafka.producer({ allowAutoTopicCreation: false })
const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })

async function committedOffset () {
  const res = await admin.fetchOffsets({ groupId: group, topics: [input] })
  assert.equal(res.length, 1, JSON.stringify(res))
  assert.equal(res[0].topic, input)
  return res[0].partitions.map(p => [p.partition, p.offset])
}

/** Kafka completes a transaction (markers, offsets) after answering EndTxn: poll for it. */
async function eventuallyDeepEqual (what, fn, want) {
  let last
  try {
    await waitFor(what, async () => {
      last = await fn()
      return JSON.stringify(last) === JSON.stringify(want)
    })
  } catch (e) {
    assert.deepEqual(last, want, `${what}: ${e.message}`)
    throw e
  }
}

/**
 * Runs a consumer (group `groupId`, subscribed from the beginning) until it
 * has read the record at `lastOffset`; returns every [offset, value] read.
 * Records arrive in offset order, so anything that should not be visible but
 * lies before `lastOffset` has been delivered by then.
 */
async function readUntil (topic, groupId, lastOffset, consumerOpts = {}) {
  const consumer = kafka.consumer({ groupId, ...consumerOpts })
  const got = []
  try {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push([partition, Number(message.offset), message.value.toString()])
      },
    })
    await waitFor(`${topic} offset ${lastOffset}`, () => got.some(([, o]) => o >= lastOffset))
  } finally {
    await consumer.disconnect().catch(() => {})
  }
  assert.ok(got.every(([p]) => p === 0), JSON.stringify(got))
  return got.map(([, o, v]) => [o, v])
}

describe(`kafkajs transactions against ${BOOTSTRAP}`, { timeout: 10 * TIMEOUT_MS }, () => {
  before(async () => {
    await admin.connect()
    const created = await admin.createTopics({
      topics: [input, output].map(topic => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      waitForLeaders: true,
      timeout: TIMEOUT_MS,
    })
    assert.equal(created, true)
    await plain.connect()
    await producer.connect()
  })

  after(async () => {
    await producer.disconnect().catch(() => {})
    await plain.disconnect().catch(() => {})
    await admin.deleteTopics({ topics: [input, output], timeout: 5000 }).catch(() => {})
    await admin.disconnect().catch(() => {})
  })

  it('plain producer writes the input', async () => {
    const res = await plain.send({
      topic: input,
      acks: -1,
      messages: [...Array(6).keys()].map(i => ({ partition: 0, value: `in-${i}` })),
    })
    assert.deepEqual(res.map(r => [r.partition, r.errorCode, r.baseOffset]), [[0, 0, '0']])
  })

  it('transaction with sendOffsets: commit, abort, commit', async () => {
    const txnSend = async (txn, values) => {
      const res = await txn.send({
        topic: output,
        acks: -1,
        messages: values.map(value => ({ partition: 0, value })),
      })
      assert.equal(res.length, 1, JSON.stringify(res))
      assert.equal(res[0].errorCode, 0)
      return res[0].baseOffset
    }
    const offsetsOf = offset => ({
      consumerGroupId: group,
      topics: [{ topic: input, partitions: [{ partition: 0, offset: String(offset) }] }],
    })

    const t1 = await producer.transaction()
    assert.equal(await txnSend(t1, ['out-0', 'out-1', 'out-2']), '0')
    await t1.sendOffsets(offsetsOf(3))
    await t1.commit()
    assert.equal(t1.isActive(), false)
    await eventuallyDeepEqual('committed offset after commit', committedOffset, [[0, '3']])

    // out-3 and out-4 land at offsets 4 and 5 (3 is the commit marker).
    const t2 = await producer.transaction()
    assert.equal(await txnSend(t2, ['out-3', 'out-4']), '4')
    await t2.sendOffsets(offsetsOf(5))
    await t2.abort()
    // The aborted transaction's offsets were not committed.
    assert.deepEqual(await committedOffset(), [[0, '3']])

    // 6 is the abort marker.
    const t3 = await producer.transaction()
    assert.equal(await txnSend(t3, ['out-3']), '7')
    await t3.sendOffsets(offsetsOf(4))
    await t3.commit()
    await eventuallyDeepEqual('committed offset after commit', committedOffset, [[0, '4']])

    // Latest offset after the last commit marker (8).
    await eventuallyDeepEqual('watermarks of the output',
      async () => (await admin.fetchTopicOffsets(output)).map(o => [o.partition, o.low, o.high]),
      [[0, '0', '9']])
  })

  it('consumer with readUncommitted: false (default) reads only committed values', async () => {
    const got = await readUntil(output, `compat-kafkajs-txn-rc-${uid()}`, 7)
    assert.deepEqual(got, [[0, 'out-0'], [1, 'out-1'], [2, 'out-2'], [7, 'out-3']])
  })

  it('consumer with readUncommitted: true also reads the aborted values', async () => {
    const got = await readUntil(output, `compat-kafkajs-txn-ru-${uid()}`, 7, { readUncommitted: true })
    assert.deepEqual(got, [[0, 'out-0'], [1, 'out-1'], [2, 'out-2'], [4, 'out-3'], [5, 'out-4'], [7, 'out-3']])
  })

  it('a consumer of the group resumes the input at the transactionally committed offset', async () => {
    const got = await readUntil(input, group, 5)
    assert.deepEqual(got, [[4, 'in-4'], [5, 'in-5']])
  })

  it('consume-transform-produce: sendOffsets for a group whose member is live', async () => {
    // kafkajs's sendOffsets sends TxnOffsetCommit without member id or
    // generation; Kafka accepts it while the group has live members.
    const liveGroup = `compat-kafkajs-txn-live-${uid()}`
    const eos = kafka.producer({ transactionalId: `${transactionalId}-eos`, idempotent: true, maxInFlightRequests: 1 })
    const consumer = kafka.consumer({ groupId: liveGroup })
    await eos.connect()
    let processed = 0
    let failure = null
    try {
      await consumer.connect()
      await consumer.subscribe({ topic: input, fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          const txn = await eos.transaction()
          try {
            await txn.send({ topic: output, messages: [{ partition: 0, value: `eos-${message.value}` }] })
            await txn.sendOffsets({
              consumerGroupId: liveGroup,
              topics: [{ topic, partitions: [{ partition, offset: String(Number(message.offset) + 1) }] }],
            })
            await txn.commit()
            processed++
          } catch (e) {
            failure = failure ?? e
            await txn.abort().catch(() => {})
          }
        },
      })
      await waitFor('six inputs processed in transactions', () => processed === 6 || failure !== null)
      assert.equal(failure, null, `a transaction failed: ${failure}`)
      await eventuallyDeepEqual('the live group\'s committed offset', async () => {
        const res = await admin.fetchOffsets({ groupId: liveGroup, topics: [input] })
        return res[0].partitions.map(p => [p.partition, p.offset])
      }, [[0, '6']])
    } finally {
      await consumer.disconnect().catch(() => {})
      await eos.disconnect().catch(() => {})
    }
  })
})
