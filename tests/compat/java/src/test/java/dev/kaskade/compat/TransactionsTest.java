package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Transactional producer: consume-transform-produce, read_committed, fencing. */
class TransactionsTest {

    private static List<String> readAll(String topic, int partitions, String isolation, int atLeast) {
        try (KafkaConsumer<String, String> c = Compat.consumer(null,
                Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation))) {
            var tps = new ArrayList<TopicPartition>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            List<String> out = new ArrayList<>();
            for (var r : Compat.pollAtLeast(c, atLeast)) {
                out.add(r.value());
            }
            // Read up to the end (the LSO under read_committed): nothing beyond what we expect.
            long deadline = System.nanoTime() + Duration.ofSeconds(Compat.TIMEOUT_S).toNanos();
            while (true) {
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                boolean atEnd = tps.stream().allMatch(tp -> c.position(tp) >= end.get(tp));
                if (atEnd) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    fail("consumer (" + isolation + ") did not reach the end offsets " + end);
                }
                for (var r : c.poll(Duration.ofMillis(200))) {
                    out.add(r.value());
                }
            }
            return out;
        }
    }

    private static Map<TopicPartition, OffsetAndMetadata> committed(Admin admin, String group) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = new HashMap<>();
        Compat.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata())
                .forEach((tp, om) -> {
                    if (om != null) {
                        m.put(tp, om);
                    }
                });
        return m;
    }

    @Test
    @Timeout(180)
    void consumeTransformProduceWithAbortAndCommit() throws Exception {
        String in = Compat.unique("txn-in");
        String out = Compat.unique("txn-out");
        String group = Compat.unique("txn-group");
        String txnId = Compat.unique("txn-id");
        int n = 10;
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, in, 2);
            Compat.createTopic(admin, out, 2);
            try (var p = Compat.producer(Map.of())) {
                for (int i = 0; i < n; i++) {
                    p.send(new ProducerRecord<>(in, i % 2, "k" + i, "value-" + i)).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                }
            }

            try (KafkaConsumer<String, String> consumer = Compat.consumer(group,
                         Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
                 KafkaProducer<String, String> producer = Compat.producer(Map.of(
                         ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
                producer.initTransactions();
                consumer.subscribe(List.of(in));
                List<ConsumerRecord<String, String>> input = Compat.pollAtLeast(consumer, n);
                assertEquals(n, input.size(), "input records");
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (var r : input) {
                    offsets.merge(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1),
                            (a, b) -> a.offset() >= b.offset() ? a : b);
                }
                assertEquals(Map.of(new TopicPartition(in, 0), new OffsetAndMetadata(n / 2),
                        new TopicPartition(in, 1), new OffsetAndMetadata(n / 2)), offsets);

                // Transaction 1: transform, send, add the offsets, then ABORT.
                producer.beginTransaction();
                for (var r : input) {
                    producer.send(new ProducerRecord<>(out, r.partition(), r.key(), "aborted-" + r.value().toUpperCase()));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                producer.flush();
                producer.abortTransaction();
                assertEquals(Map.of(), committed(admin, group), "no offsets committed after abort");

                // Transaction 2: the same work, COMMITTED.
                producer.beginTransaction();
                for (var r : input) {
                    producer.send(new ProducerRecord<>(out, r.partition(), r.key(), r.value().toUpperCase()));
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                producer.commitTransaction();

                Compat.waitUntil("offsets committed by the transaction", () -> {
                    try {
                        return committed(admin, group).equals(offsets);
                    } catch (Exception e) {
                        return false;
                    }
                });
                assertEquals(offsets.get(new TopicPartition(in, 0)),
                        consumer.committed(Set.of(new TopicPartition(in, 0))).get(new TopicPartition(in, 0)));
            }

            List<String> committedView = readAll(out, 2, "read_committed", n);
            List<String> expected = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                expected.add("VALUE-" + i);
            }
            assertEquals(expected.stream().sorted().collect(Collectors.toList()),
                    committedView.stream().sorted().collect(Collectors.toList()),
                    "read_committed sees the committed output only");

            List<String> uncommittedView = readAll(out, 2, "read_uncommitted", 2 * n);
            assertEquals(2 * n, uncommittedView.size(), "read_uncommitted sees aborted and committed records: " + uncommittedView);
            assertEquals(n, uncommittedView.stream().filter(v -> v.startsWith("aborted-")).count());
        }
    }

    @Test
    @Timeout(180)
    void zombieProducerIsFenced() throws Exception {
        String topic = Compat.unique("txn-fence");
        String txnId = Compat.unique("fence-id");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
        }
        KafkaProducer<String, String> old = Compat.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId));
        try {
            old.initTransactions();
            old.beginTransaction();
            old.send(new ProducerRecord<>(topic, 0, "k", "old-committed")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
            old.commitTransaction();

            try (var fresh = Compat.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
                fresh.initTransactions(); // bumps the epoch: `old` is now a zombie

                Throwable error = null;
                try {
                    old.beginTransaction();
                    old.send(new ProducerRecord<>(topic, 0, "k", "zombie")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                    old.commitTransaction();
                } catch (Exception e) {
                    error = e;
                }
                assertNotNull(error, "the zombie producer's send/commit must fail");
                assertTrue(Compat.hasCause(error, List.of(ProducerFencedException.class, InvalidProducerEpochException.class)),
                        "expected ProducerFencedException/InvalidProducerEpochException, got " + Compat.causes(error));

                fresh.beginTransaction();
                fresh.send(new ProducerRecord<>(topic, 0, "k", "fresh-committed")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                fresh.commitTransaction();
            }
        } finally {
            old.close(Duration.ofSeconds(5));
        }
        List<String> seen = readAll(topic, 1, "read_committed", 2);
        assertEquals(List.of("old-committed", "fresh-committed"), seen, "read_committed view");
    }
}
