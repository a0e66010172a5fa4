"""aiokafka against a broker at KASKADE_BOOTSTRAP: exactly-once
consume-transform-produce while the group's member is live.

aiokafka's `send_offsets_to_transaction` sends TxnOffsetCommit without the
member id and generation (version 0-2); Apache Kafka accepts it while the
group has live members, and so must Kaskade. A read_committed reader then
sees every output exactly once, and the group's committed offset is the end
of the input.
"""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic

N = 12


async def _consume_transform_produce():
    src, dst, group = unique_topic("aio-in"), unique_topic("aio-out"), unique_topic("aio-group")
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in (src, dst)])
        # (name, error code, error message): null, not "", when there is no
        # error, as Kafka sends it (aiokafka's own tests assert None).
        assert sorted(created.topic_errors) == sorted([(src, 0, None), (dst, 0, None)])
        plain = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await plain.start()
        try:
            for i in range(N):
                await plain.send_and_wait(src, f"in-{i}".encode(), partition=0)
        finally:
            await plain.stop()

        consumer = AIOKafkaConsumer(src, bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False,
                                    auto_offset_reset="earliest", isolation_level="read_committed")
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=unique_topic("aio-txn"))
        await consumer.start()
        await producer.start()
        done = 0
        try:
            while done < N:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, msgs in batches.items():
                    async with producer.transaction():
                        for m in msgs:
                            await producer.send(dst, b"out-" + m.value, partition=0)
                        await producer.send_offsets_to_transaction({tp: msgs[-1].offset + 1}, group)
                    done += len(msgs)
            # Kafka completes a transaction's offsets after answering EndTxn.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT_S
            committed = await consumer.committed(TopicPartition(src, 0))
            while committed != N and loop.time() < deadline:
                await asyncio.sleep(0.2)
                committed = await consumer.committed(TopicPartition(src, 0))
        finally:
            await producer.stop()
            await consumer.stop()
        assert committed == N

        reader = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level="read_committed",
                                  auto_offset_reset="earliest", enable_auto_commit=False)
        await reader.start()
        try:
            tp = TopicPartition(dst, 0)
            reader.assign([tp])
            await reader.seek_to_beginning(tp)
            got = []
            while len(got) < N:
                batch = await reader.getmany(tp, timeout_ms=1000)
                got.extend(m.value.decode() for m in batch.get(tp, []))
        finally:
            await reader.stop()
        assert got == [f"out-in-{i}" for i in range(N)]
    finally:
        await admin.delete_topics([src, dst])
        await admin.close()


def test_consume_transform_produce_with_a_live_member():
    asyncio.run(asyncio.wait_for(_consume_transform_produce(), 4 * TIMEOUT_S))
