package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The default producer: idempotent, acks=all, 5 requests in flight per connection. */
class ProducerDefaultsTest {

    @Test
    void defaultConfigIsIdempotentWithFiveInFlight() {
        // Only what the tutorial sets (bootstrap and serializers): what the client derives.
        var cfg = new ProducerConfig(Compat.producerProps());
        assertTrue(cfg.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG), "enable.idempotence default");
        assertEquals(5, cfg.getInt(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION));
        assertEquals("all", cfg.getString(ProducerConfig.ACKS_CONFIG).replace("-1", "all"));
    }

    @Test
    @Timeout(180)
    void pipelinedIdempotentProduceIsExactlyOnceAndInOrder() throws Exception {
        String topic = Compat.unique("idem");
        int partitions = 4;
        int perPartition = 2500;
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, partitions);

            // The default producer: bootstrap and serializers only, nothing else.
            Map<TopicPartition, List<Future<RecordMetadata>>> futures = new HashMap<>();
            try (var producer = new KafkaProducer<String, String>(Compat.producerProps())) {
                String pad = "x".repeat(100);
                for (int i = 0; i < perPartition; i++) {
                    for (int p = 0; p < partitions; p++) {
                        // Sent without waiting: many batches in flight to each partition.
                        futures.computeIfAbsent(new TopicPartition(topic, p), k -> new ArrayList<>())
                                .add(producer.send(new ProducerRecord<>(topic, p, "k" + p, p + ":" + i + ":" + pad)));
                    }
                }
                producer.flush();
                for (var e : futures.entrySet()) {
                    long expectedOffset = -1;
                    for (var f : e.getValue()) {
                        RecordMetadata md = f.get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                        if (expectedOffset < 0) {
                            expectedOffset = md.offset();
                        }
                        // In send order, with consecutive offsets: nothing duplicated or reordered.
                        assertEquals(expectedOffset, md.offset(), "offset in send order on " + e.getKey());
                        expectedOffset++;
                    }
                }
            }

            // The partitions' producer state shows the idempotent producer id and epoch.
            var tps = new ArrayList<>(futures.keySet());
            var described = Compat.get(admin.describeProducers(tps).all());
            long producerId = -2;
            for (var tp : tps) {
                List<ProducerState> states = described.get(tp).activeProducers();
                assertEquals(1, states.size(), "one active producer on " + tp + ": " + states);
                ProducerState s = states.get(0);
                assertTrue(s.producerId() >= 0, "producer id " + s.producerId());
                assertTrue(s.producerEpoch() >= 0, "producer epoch " + s.producerEpoch());
                assertEquals(perPartition - 1, s.lastSequence(), "last sequence on " + tp);
                assertFalse(s.currentTransactionStartOffset().isPresent(), "no transaction open");
                if (producerId == -2) {
                    producerId = s.producerId();
                }
                assertEquals(producerId, s.producerId(), "one producer id on all partitions");
            }
        }

        // Read everything back: each record exactly once, in order per partition.
        try (KafkaConsumer<String, String> c = Compat.consumer(null, Map.of())) {
            var tps = new ArrayList<TopicPartition>();
            for (int p = 0; p < partitions; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, partitions * perPartition, Duration.ofSeconds(90));
            // a further poll brings nothing more
            for (var r : c.poll(Duration.ofMillis(500))) {
                got.add(r);
            }
            assertEquals(partitions * perPartition, got.size(), "records read back");
            int[] next = new int[partitions];
            for (var r : got) {
                String[] parts = r.value().split(":");
                int p = Integer.parseInt(parts[0]);
                int i = Integer.parseInt(parts[1]);
                assertEquals(r.partition(), p, "record in its partition");
                assertEquals(next[p], i, "sequence on partition " + p);
                assertEquals(i, r.offset(), "offset on partition " + p);
                assertEquals("k" + p, r.key());
                next[p]++;
            }
            for (int p = 0; p < partitions; p++) {
                assertEquals(perPartition, next[p], "count on partition " + p);
            }
        }
    }
}
