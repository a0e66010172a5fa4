package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** KafkaConsumer: assign/subscribe, seeks, offsetsForTimes, committed, pause/resume, groups. */
class ConsumerTest {

    /** Records every callback, in order. */
    static final class Recorder implements ConsumerRebalanceListener {
        final String name;
        final List<String> events = Collections.synchronizedList(new ArrayList<>());
        final List<Set<TopicPartition>> revoked = new ArrayList<>();
        final List<Set<TopicPartition>> assigned = new ArrayList<>();
        final List<Set<TopicPartition>> lost = new ArrayList<>();

        Recorder(String name) {
            this.name = name;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            revoked.add(new HashSet<>(partitions));
            events.add("revoked" + partitions);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            assigned.add(new HashSet<>(partitions));
            events.add("assigned" + partitions);
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            lost.add(new HashSet<>(partitions));
            events.add("lost" + partitions);
        }
    }

    private static void produce(String topic, int partition, int count, long baseTs) throws Exception {
        try (var p = Compat.producer(Map.of())) {
            for (int i = 0; i < count; i++) {
                Long ts = baseTs > 0 ? baseTs + i * 1000L : null;
                p.send(new ProducerRecord<>(topic, partition, ts, "k" + i, "p" + partition + "-v" + i));
            }
            p.flush();
        }
    }

    @Test
    @Timeout(120)
    void assignSeekOffsetsForTimesAndCommitted() throws Exception {
        String topic = Compat.unique("seek");
        String group = Compat.unique("seek-group");
        long base = System.currentTimeMillis() - 60_000;
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
        }
        produce(topic, 0, 10, base);
        TopicPartition tp = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = Compat.consumer(group, Map.of())) {
            c.assign(List.of(tp));
            assertEquals(Set.of(tp), c.assignment());

            c.seekToBeginning(List.of(tp));
            assertEquals(0, c.position(tp));
            c.seekToEnd(List.of(tp));
            assertEquals(10, c.position(tp));
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)));
            assertEquals(Map.of(tp, 10L, tp1, 0L), c.endOffsets(List.of(tp, tp1)));

            c.seek(tp, 5);
            List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, 5);
            assertEquals(5, got.get(0).offset(), "first record after seek(5)");
            assertEquals("p0-v5", got.get(0).value());
            assertEquals(base + 5000, got.get(0).timestamp());
            assertEquals(5, got.size());
            assertEquals(10, c.position(tp));

            Map<TopicPartition, OffsetAndTimestamp> byTime = c.offsetsForTimes(Map.of(tp, base + 3500, tp1, base));
            assertNotNull(byTime.get(tp));
            assertEquals(4, byTime.get(tp).offset(), "first offset with timestamp >= base+3.5s");
            assertEquals(base + 4000, byTime.get(tp).timestamp());
            assertNull(byTime.get(tp1), "empty partition: no offset for the time");
            Map<TopicPartition, OffsetAndTimestamp> future = c.offsetsForTimes(Map.of(tp, base + 3_600_000));
            assertNull(future.get(tp), "no record at or after a future time");

            assertNull(c.committed(Set.of(tp)).get(tp), "nothing committed yet");
            c.commitSync(Map.of(tp, new OffsetAndMetadata(7, "meta-7")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            assertNotNull(om);
            assertEquals(7, om.offset());
            assertEquals("meta-7", om.metadata());
        }
        // A new consumer of the group (assign, no reset) starts at the committed offset.
        try (KafkaConsumer<String, String> c = Compat.consumer(group, Map.of())) {
            c.assign(List.of(tp));
            assertEquals(7, c.position(tp));
            List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, 3);
            assertEquals(List.of(7L, 8L, 9L), got.stream().map(ConsumerRecord::offset).toList());
        }
    }

    @Test
    @Timeout(120)
    void pauseAndResume() throws Exception {
        String topic = Compat.unique("pause");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
        }
        produce(topic, 0, 5, 0);
        produce(topic, 1, 5, 0);
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = Compat.consumer(null, Map.of())) {
            c.assign(List.of(p0, p1));
            c.seekToBeginning(List.of(p0, p1));
            c.pause(List.of(p0));
            assertEquals(Set.of(p0), c.paused());
            List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, 5);
            // a few more polls while p0 is paused
            for (int i = 0; i < 3; i++) {
                for (var r : c.poll(Duration.ofMillis(300))) {
                    got.add(r);
                }
            }
            assertEquals(5, got.size(), "only p1's records while p0 is paused: " + got);
            assertTrue(got.stream().allMatch(r -> r.partition() == 1), "paused partition returned records: " + got);
            assertEquals(0, c.position(p0), "paused partition did not move");

            c.resume(List.of(p0));
            assertEquals(Set.of(), c.paused());
            List<ConsumerRecord<String, String>> after = Compat.pollAtLeast(c, 5);
            assertEquals(5, after.size());
            assertTrue(after.stream().allMatch(r -> r.partition() == 0), "after resume: " + after);
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L), after.stream().map(ConsumerRecord::offset).toList());
        }
    }

    @Test
    @Timeout(120)
    void subscribeWithListenerAndHeadersRoundTrip() throws Exception {
        String topic = Compat.unique("headers");
        String group = Compat.unique("headers-group");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 3);
        }
        byte[] binary = {0, 1, 2, (byte) 0xff, (byte) 0x80};
        try (var p = Compat.producer(Map.of())) {
            var headers = new RecordHeaders();
            headers.add("trace-id", "abc-123".getBytes(StandardCharsets.UTF_8));
            headers.add("repeat", "first".getBytes(StandardCharsets.UTF_8));
            headers.add("repeat", "second".getBytes(StandardCharsets.UTF_8));
            headers.add("binary", binary);
            headers.add("null-value", null);
            p.send(new ProducerRecord<>(topic, 1, "with-headers", "v", headers)).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
            p.send(new ProducerRecord<>(topic, 2, "no-headers", "w")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
        }
        Recorder listener = new Recorder("c");
        try (KafkaConsumer<String, String> c = Compat.consumer(group, Map.of())) {
            c.subscribe(List.of(topic), listener);
            List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, 2);
            assertEquals(2, got.size());
            assertEquals(3, c.assignment().size(), "subscribe: all 3 partitions assigned");
            assertFalse(listener.assigned.isEmpty(), "onPartitionsAssigned called");
            assertEquals(c.assignment(), listener.assigned.get(listener.assigned.size() - 1));
            assertTrue(listener.lost.isEmpty(), "no partitions lost: " + listener.events);

            ConsumerRecord<String, String> r = got.stream().filter(x -> "with-headers".equals(x.key())).findFirst().orElseThrow();
            List<Header> hs = new ArrayList<>();
            r.headers().forEach(hs::add);
            assertEquals(5, hs.size(), "headers: " + hs);
            assertEquals("trace-id", hs.get(0).key());
            assertEquals("abc-123", new String(hs.get(0).value(), StandardCharsets.UTF_8));
            assertEquals("repeat", hs.get(1).key());
            assertEquals("first", new String(hs.get(1).value(), StandardCharsets.UTF_8));
            assertEquals("repeat", hs.get(2).key());
            assertEquals("second", new String(hs.get(2).value(), StandardCharsets.UTF_8));
            assertEquals("second", new String(r.headers().lastHeader("repeat").value(), StandardCharsets.UTF_8));
            assertEquals("binary", hs.get(3).key());
            assertArrayEquals(binary, hs.get(3).value());
            assertEquals("null-value", hs.get(4).key());
            assertNull(hs.get(4).value());
            ConsumerRecord<String, String> plain = got.stream().filter(x -> "no-headers".equals(x.key())).findFirst().orElseThrow();
            assertEquals(0, plain.headers().toArray().length);

            c.commitSync();
            assertEquals(1, c.committed(Set.of(new TopicPartition(topic, 1))).get(new TopicPartition(topic, 1)).offset());
        }
        // close() left the group and revoked everything (eager-or-cooperative: all partitions are given up)
        assertTrue(listener.events.get(listener.events.size() - 1).startsWith("revoked"), "close revokes: " + listener.events);
    }

    @Test
    @Timeout(180)
    void cooperativeStickyTwoMembersIncrementalRebalance() throws Exception {
        String topic = Compat.unique("coop");
        String group = Compat.unique("coop-group");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 4);
        }
        Map<String, Object> cfg = Map.of(
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName(),
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        Recorder la = new Recorder("a");
        Recorder lb = new Recorder("b");
        try (KafkaConsumer<String, String> a = Compat.consumer(group, cfg);
             KafkaConsumer<String, String> b = Compat.consumer(group, cfg)) {
            a.subscribe(List.of(topic), la);
            Compat.waitUntil("member A owns all 4 partitions", Duration.ofSeconds(60), () -> {
                a.poll(Duration.ofMillis(100));
                return a.assignment().size() == 4;
            });
            Set<TopicPartition> aBefore = new HashSet<>(a.assignment());
            assertTrue(la.revoked.isEmpty(), "nothing revoked yet: " + la.events);

            b.subscribe(List.of(topic), lb);
            Compat.waitUntil("both members own 2 partitions", Duration.ofSeconds(90), () -> {
                a.poll(Duration.ofMillis(100));
                b.poll(Duration.ofMillis(100));
                return a.assignment().size() == 2 && b.assignment().size() == 2;
            });
            Set<TopicPartition> aAfter = a.assignment();
            Set<TopicPartition> bAfter = b.assignment();
            assertTrue(Collections.disjoint(aAfter, bAfter), "disjoint: " + aAfter + " " + bAfter);
            assertTrue(aBefore.containsAll(aAfter), "sticky: A kept partitions it owned");

            // Cooperative: A revoked only the partitions that moved to B, never the ones it kept.
            Set<TopicPartition> allRevoked = new HashSet<>();
            for (Set<TopicPartition> r : la.revoked) {
                assertTrue(Collections.disjoint(r, aAfter), "A revoked a partition it kept: " + la.events);
                allRevoked.addAll(r);
            }
            assertEquals(bAfter, allRevoked, "A revoked exactly the moved partitions: " + la.events);
            assertTrue(la.lost.isEmpty(), "A lost nothing: " + la.events);
            Set<TopicPartition> bAssigned = new HashSet<>();
            lb.assigned.forEach(bAssigned::addAll);
            assertEquals(bAfter, bAssigned, "B's onPartitionsAssigned: " + lb.events);
            assertTrue(lb.revoked.stream().allMatch(Set::isEmpty), "B revoked nothing: " + lb.events);
        }
    }

    @Test
    @Timeout(180)
    void staticMemberRestartKeepsAssignmentWithoutRebalance() throws Exception {
        String topic = Compat.unique("static");
        String group = Compat.unique("static-group");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 3);
            Map<String, Object> cfg = Map.of(
                    ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-1",
                    ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
            int generation;
            String memberId;
            Set<TopicPartition> assignment;
            try (KafkaConsumer<String, String> c = Compat.consumer(group, cfg)) {
                c.subscribe(List.of(topic));
                Compat.waitUntil("static member owns 3 partitions", Duration.ofSeconds(60), () -> {
                    c.poll(Duration.ofMillis(100));
                    return c.assignment().size() == 3;
                });
                generation = c.groupMetadata().generationId();
                memberId = c.groupMetadata().memberId();
                assignment = new HashSet<>(c.assignment());
                assertEquals("instance-1", c.groupMetadata().groupInstanceId().orElse(null));
            } // a static member does not leave the group on close

            var d = Compat.get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            assertEquals(1, d.members().size(), "the static member stays in the group after close: " + d);
            assertEquals("instance-1", d.members().iterator().next().groupInstanceId().orElse(null));

            Recorder listener = new Recorder("restarted");
            try (KafkaConsumer<String, String> c = Compat.consumer(group, cfg)) {
                c.subscribe(List.of(topic), listener);
                Compat.waitUntil("restarted static member owns 3 partitions", Duration.ofSeconds(60), () -> {
                    c.poll(Duration.ofMillis(100));
                    return c.assignment().size() == 3;
                });
                assertEquals(assignment, c.assignment(), "same assignment after restart");
                assertEquals(generation, c.groupMetadata().generationId(), "no rebalance: same generation");
                assertTrue(!memberId.equals(c.groupMetadata().memberId()), "a new member id replaces the old one");
                assertEquals(List.of(assignment), listener.assigned, "listener: " + listener.events);
                var d2 = Compat.get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(1, d2.members().size(), "one member: " + d2);
            }
            try {
                admin.removeMembersFromConsumerGroup(group, new RemoveMembersFromConsumerGroupOptions()).all()
                        .get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                System.err.println("[static] note: removing the static member: " + e);
            }
        }
    }
}
