package dev.kaskade.compat.jvmapps;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Kafka Streams word count with exactly_once_v2, run as a separate JVM that
 * is killed with SIGKILL part-way through and restarted with the same
 * application.id: the final committed count of every word must be exactly
 * the number of times it occurs in the input.
 */
class StreamsWordCountTest {
    private static final String[] VOCAB = {
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
        "india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa"};
    private static final int LINES = 4000;
    private static final long WAIT_MS = 120_000;

    @Test
    @Timeout(value = 420, unit = TimeUnit.SECONDS)
    void wordCountExactlyOnceSurvivesKillAndRestart() throws Exception {
        String bootstrap = Util.bootstrap();
        String appId = Util.unique("compat-jvmapps-wc");
        String input = appId + "-input";
        String output = appId + "-output";
        Path dir = Files.createTempDirectory("jvm-apps-streams-");
        Path stateDir = dir.resolve("state");
        Files.createDirectories(stateDir);
        Util.log("Streams test: application.id=" + appId + " dir=" + dir);

        // The input: LINES lines of 1..6 words from VOCAB, with mixed separators.
        Random rnd = new Random(20261206L);
        List<String> lines = new ArrayList<>();
        Map<String, Long> expected = new TreeMap<>();
        Map<String, Long> expectedFirstHalf = new TreeMap<>();
        String[] seps = {" ", ", ", "  ", " - ", ". "};
        for (int i = 0; i < LINES; i++) {
            int n = 1 + rnd.nextInt(6);
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j < n; j++) {
                String w = VOCAB[rnd.nextInt(VOCAB.length)];
                if (j > 0) {
                    sb.append(seps[rnd.nextInt(seps.length)]);
                }
                sb.append(rnd.nextBoolean() ? w : w.toUpperCase());
                expected.merge(w, 1L, Long::sum);
                if (i < LINES / 2) {
                    expectedFirstHalf.merge(w, 1L, Long::sum);
                }
            }
            lines.add(sb.toString());
        }
        long totalWords = expected.values().stream().mapToLong(Long::longValue).sum();
        Util.log("input: " + LINES + " lines, " + totalWords + " words, expected counts " + expected);

        List<ChildJvm> apps = new ArrayList<>();
        boolean ok = false;
        try (Admin admin = Util.admin()) {
            Util.createTopics(admin, 3, input, output);
            produce(bootstrap, input, lines.subList(0, LINES / 2), 0);
            Util.log("produced the first " + LINES / 2 + " lines");

            List<String> appArgs = List.of(bootstrap, appId, input, output, stateDir.toString());
            ChildJvm run1 = ChildJvm.start(dir, "streams-run1", "256m", WordCountApp.class.getName(), appArgs);
            apps.add(run1);

            // Wait until some counts are committed to the output and a
            // transaction is open on it (last stable offset < high watermark
            // of a partition, from ListOffsets with both isolation levels),
            // then SIGKILL, so the restart must abort that transaction. If no
            // open transaction is caught within 20 s of the first committed
            // count, kill anyway.
            long deadline = System.currentTimeMillis() + WAIT_MS;
            long firstCommitted = 0;
            boolean openTxn = false;
            Map<TopicPartition, Long> lso = Map.of();
            Map<TopicPartition, Long> hw = Map.of();
            while (true) {
                if (!run1.alive()) {
                    fail("the Streams app exited (status " + run1.exitCode()
                            + ") before it was killed" + run1.tails(60));
                }
                // High watermarks first: a last stable offset read afterwards
                // that is still below one means a transaction is open.
                hw = Util.endOffsets(admin, output, IsolationLevel.READ_UNCOMMITTED);
                lso = Util.endOffsets(admin, output, IsolationLevel.READ_COMMITTED);
                long committedEnd = lso.values().stream().mapToLong(Long::longValue).sum();
                if (committedEnd > 0 && firstCommitted == 0) {
                    firstCommitted = System.currentTimeMillis();
                }
                openTxn = false;
                for (var e : lso.entrySet()) {
                    if (e.getValue() < hw.get(e.getKey())) {
                        openTxn = true;
                    }
                }
                if (committedEnd > 0 && (openTxn || System.currentTimeMillis() - firstCommitted > 20_000)) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    fail("no committed count on " + output + " within " + WAIT_MS / 1000 + " s of starting the app"
                            + " (last stable offsets " + lso + ", high watermarks " + hw + ")" + run1.tails(60));
                }
                Thread.sleep(20);
            }
            run1.kill();
            Util.log("SIGKILLed run 1 " + (openTxn ? "with a transaction open on the output" : "(no open transaction seen)")
                    + ": last stable offsets " + lso + ", high watermarks " + hw);
            Map<String, Long> seen = latest(Util.readAll(output, new StringDeserializer(), new LongDeserializer(), 30_000));
            long seenSum = seen.values().stream().mapToLong(Long::longValue).sum();
            long firstHalfWords = expectedFirstHalf.values().stream().mapToLong(Long::longValue).sum();
            Util.log("killed run 1 after seeing committed counts summing to " + seenSum + " of the first half's "
                    + firstHalfWords + " words" + (seenSum < firstHalfWords ? " (mid-stream)" : " (first half done)"));

            produce(bootstrap, input, lines.subList(LINES / 2, LINES), LINES / 2);
            Util.log("produced the remaining " + (LINES - LINES / 2) + " lines");

            ChildJvm run2 = ChildJvm.start(dir, "streams-run2", "256m", WordCountApp.class.getName(), appArgs);
            apps.add(run2);

            // Wait until the latest committed count of every word is the expected total.
            Map<String, Long> last = Map.of();
            deadline = System.currentTimeMillis() + WAIT_MS;
            while (true) {
                List<ConsumerRecord<String, Long>> recs =
                        Util.readAll(output, new StringDeserializer(), new LongDeserializer(), 30_000);
                last = latest(recs);
                if (last.equals(expected)) {
                    break;
                }
                for (var e : last.entrySet()) {
                    Long exp = expected.get(e.getKey());
                    if (exp == null || e.getValue() > exp) {
                        fail("word " + e.getKey() + " has a committed count " + e.getValue() + " above its total "
                                + exp + " in the input (counted twice); latest counts " + diff(expected, last)
                                + run2.tails(60));
                    }
                }
                if (!run2.alive()) {
                    fail("the restarted Streams app exited (status " + run2.exitCode() + "); latest counts "
                            + diff(expected, last) + run2.tails(60));
                }
                if (System.currentTimeMillis() > deadline) {
                    fail("after " + WAIT_MS / 1000 + " s the latest committed counts on " + output
                            + " are not the expected totals: " + diff(expected, last) + run2.tails(60));
                }
                Thread.sleep(250);
            }
            Util.log("latest counts equal the expected totals");

            // The app's committed input offsets reach the end of the input, so
            // no more output can come: the counts checked below are final.
            Map<TopicPartition, Long> inputEnd = Util.endOffsets(admin, input);
            deadline = System.currentTimeMillis() + 60_000;
            Map<TopicPartition, OffsetAndMetadata> committed;
            while (true) {
                committed = admin.listConsumerGroupOffsets(Map.of(appId, new ListConsumerGroupOffsetsSpec()))
                        .partitionsToOffsetAndMetadata(appId).get();
                boolean all = true;
                for (var e : inputEnd.entrySet()) {
                    OffsetAndMetadata om = committed.get(e.getKey());
                    if (om == null || om.offset() != e.getValue()) {
                        all = false;
                    }
                }
                if (all) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    fail("group " + appId + " committed input offsets " + committed + " never reached the input end "
                            + inputEnd + run2.tails(40));
                }
                Thread.sleep(250);
            }

            List<ConsumerRecord<String, Long>> all =
                    Util.readAll(output, new StringDeserializer(), new LongDeserializer(), 30_000);
            Map<String, Long> fin = latest(all);
            assertEquals(expected, fin, "final latest counts per word (read_committed): " + diff(expected, fin));
            // The app has no record cache, so every count update is output:
            // the committed updates of a word must be exactly 1, 2, ..., total.
            // A batch counted twice (state or output of an aborted transaction
            // kept) shows as a repeat or a jump; a lost one as a gap.
            Map<String, Long> prev = new TreeMap<>();
            for (ConsumerRecord<String, Long> r : all) {
                Long v = r.value();
                assertTrue(expected.containsKey(r.key()), "unexpected word on the output: " + r.key());
                long want = prev.getOrDefault(r.key(), 0L) + 1;
                assertTrue(v != null && v == want, "word " + r.key() + ": committed count " + v + " at "
                        + r.topic() + "-" + r.partition() + "@" + r.offset() + ", expected " + want
                        + " (the previous committed count plus one)");
                prev.put(r.key(), v);
            }
            assertEquals(totalWords, all.size(), "committed output records (one per word occurrence)");
            Util.log(all.size() + " committed output records: every word counts 1, 2, ..., total");
            int uncommitted = Util.readAll(output, new StringDeserializer(), new LongDeserializer(), 30_000,
                    "read_uncommitted").size();
            Util.log("a read_uncommitted consumer sees " + uncommitted + " output records ("
                    + (uncommitted - all.size()) + " from aborted transactions)");

            // The framework's internal topics: the repartition topic of
            // groupBy and the changelog of the count store (compacted).
            Set<String> internal = Util.internalTopicsWithPrefix(admin, appId + "-");
            String repartition = appId + "-" + WordCountApp.REPARTITION_NAME + "-repartition";
            String changelog = appId + "-" + WordCountApp.STORE_NAME + "-changelog";
            assertTrue(internal.contains(repartition), "repartition topic " + repartition + " not listed; topics with the app's prefix: " + internal);
            assertTrue(internal.contains(changelog), "changelog topic " + changelog + " not listed; topics with the app's prefix: " + internal);
            assertTrue(internal.stream().anyMatch(t -> t.endsWith("-repartition")) && internal.stream().anyMatch(t -> t.endsWith("-changelog")));
            ConfigResource cl = new ConfigResource(ConfigResource.Type.TOPIC, changelog);
            Config clCfg = admin.describeConfigs(List.of(cl)).all().get().get(cl);
            String policy = clCfg.get("cleanup.policy") == null ? null : clCfg.get("cleanup.policy").value();
            assertTrue(policy != null && policy.contains("compact"),
                    "changelog " + changelog + " cleanup.policy is " + policy + ", expected compact");
            int clParts = admin.describeTopics(List.of(changelog, repartition)).allTopicNames().get()
                    .get(changelog).partitions().size();
            assertEquals(3, clParts, "partitions of " + changelog);
            Util.log("internal topics " + internal + " present; changelog cleanup.policy=" + policy);

            if (!run2.stop(30)) {
                run2.kill();
            }
            ok = true;
        } finally {
            for (ChildJvm a : apps) {
                a.kill();
            }
            if (ok) {
                Util.deleteTree(dir);
            } else {
                Util.log("kept " + dir + " (app stdout and logs)");
                for (ChildJvm a : apps) {
                    System.out.println(a.tails(80));
                }
            }
        }
    }

    private static void produce(String bootstrap, String topic, List<String> lines, int firstIndex) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < lines.size(); i++) {
                fs.add(prod.send(new ProducerRecord<>(topic, "line-" + (firstIndex + i), lines.get(i))));
            }
            prod.flush();
            for (Future<RecordMetadata> f : fs) {
                f.get(60, TimeUnit.SECONDS);
            }
        }
    }

    private static Map<String, Long> latest(List<ConsumerRecord<String, Long>> recs) {
        Map<String, Long> m = new TreeMap<>();
        for (ConsumerRecord<String, Long> r : recs) {
            m.put(r.key(), r.value());
        }
        return m;
    }

    private static String diff(Map<String, Long> expected, Map<String, Long> actual) {
        StringBuilder sb = new StringBuilder();
        int n = 0;
        for (String w : new java.util.TreeSet<String>() {{
                addAll(expected.keySet());
                addAll(actual.keySet());
            }}) {
            Long e = expected.get(w);
            Long a = actual.get(w);
            if (!java.util.Objects.equals(e, a)) {
                if (n++ < 20) {
                    sb.append(w).append(": got ").append(a).append(" expected ").append(e).append("; ");
                }
            }
        }
        return n == 0 ? "(equal)" : n + " words differ: " + sb;
    }
}
