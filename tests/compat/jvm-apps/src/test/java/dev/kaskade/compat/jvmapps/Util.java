package dev.kaskade.compat.jvmapps;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Deserializer;

final class Util {
    private static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("HH:mm:ss.SSS");

    private Util() {
    }

    static String bootstrap() {
        String b = System.getenv("KASKADE_BOOTSTRAP");
        if (b == null || b.isBlank()) {
            throw new IllegalStateException("KASKADE_BOOTSTRAP is not set (host:port of the broker)");
        }
        return b.trim();
    }

    static void log(String msg) {
        System.out.println("[" + LocalTime.now().format(TS) + "] " + msg);
        System.out.flush();
    }

    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);
        return Admin.create(p);
    }

    static void createTopics(Admin admin, int partitions, String... names) throws Exception {
        List<NewTopic> topics = new ArrayList<>();
        for (String n : names) {
            topics.add(new NewTopic(n, partitions, (short) 1));
        }
        admin.createTopics(topics).all().get();
        // Wait until every partition has a leader in the metadata.
        long deadline = System.currentTimeMillis() + 30_000;
        while (true) {
            try {
                Map<String, TopicDescription> d = admin.describeTopics(List.of(names)).allTopicNames().get();
                boolean ok = d.values().stream().allMatch(t -> t.partitions().size() == partitions
                        && t.partitions().stream().allMatch(pi -> pi.leader() != null && !pi.leader().isEmpty()));
                if (ok) {
                    return;
                }
            } catch (Exception e) {
                if (System.currentTimeMillis() > deadline) {
                    throw e;
                }
            }
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("topics " + List.of(names) + " have no leaders after 30 s");
            }
            Thread.sleep(200);
        }
    }

    /** End offsets (latest) of all partitions of a topic. */
    static Map<TopicPartition, Long> endOffsets(Admin admin, String topic) throws Exception {
        return endOffsets(admin, topic, org.apache.kafka.common.IsolationLevel.READ_UNCOMMITTED);
    }

    /** End offsets of a topic: the high watermarks, or with READ_COMMITTED the last stable offsets. */
    static Map<TopicPartition, Long> endOffsets(Admin admin, String topic, org.apache.kafka.common.IsolationLevel iso)
            throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (var pi : d.partitions()) {
            req.put(new TopicPartition(topic, pi.partition()), OffsetSpec.latest());
        }
        Map<TopicPartition, Long> res = new HashMap<>();
        admin.listOffsets(req, new org.apache.kafka.clients.admin.ListOffsetsOptions(iso)).all().get().forEach((tp, info) -> res.put(tp, info.offset()));
        return res;
    }

    /**
     * Reads a whole topic from the beginning with a read_committed consumer:
     * until every partition's position reaches the end offset the consumer
     * sees (the last stable offset), bounded by timeoutMs.
     */
    static <K, V> List<ConsumerRecord<K, V>> readAll(String topic, Deserializer<K> kd, Deserializer<V> vd,
            long timeoutMs) {
        return readAll(topic, kd, vd, timeoutMs, "read_committed");
    }

    static <K, V> List<ConsumerRecord<K, V>> readAll(String topic, Deserializer<K> kd, Deserializer<V> vd,
            long timeoutMs, String isolation) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<ConsumerRecord<K, V>> out = new ArrayList<>();
        try (KafkaConsumer<K, V> c = new KafkaConsumer<>(p, kd, vd)) {
            List<TopicPartition> tps = c.partitionsFor(topic, java.time.Duration.ofSeconds(30)).stream()
                    .map(pi -> new TopicPartition(topic, pi.partition()))
                    .sorted(Comparator.comparingInt(TopicPartition::partition))
                    .collect(Collectors.toList());
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, java.time.Duration.ofSeconds(30));
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp, java.time.Duration.ofSeconds(30)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    return out;
                }
                if (System.currentTimeMillis() > deadline) {
                    Map<TopicPartition, Long> pos = new HashMap<>();
                    for (TopicPartition tp : tps) {
                        pos.put(tp, c.position(tp));
                    }
                    throw new AssertionError("read_committed consumer of " + topic + " did not reach the end offsets "
                            + end + " in " + timeoutMs + " ms; positions " + pos + ", " + out.size() + " records read");
                }
                c.poll(java.time.Duration.ofMillis(200)).forEach(out::add);
            }
        }
    }

    static String tail(Path p, int lines) {
        try {
            if (!Files.exists(p)) {
                return "(no file)";
            }
            List<String> all = Files.readAllLines(p, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(cannot read " + p + ": " + e + ")";
        }
    }

    /** Complete lines of a file (a trailing fragment without '\n' is left out). */
    static List<String> completeLines(Path p) throws IOException {
        if (!Files.exists(p)) {
            return List.of();
        }
        String s = Files.readString(p, StandardCharsets.UTF_8);
        int last = s.lastIndexOf('\n');
        if (last < 0) {
            return List.of();
        }
        return List.of(s.substring(0, last).split("\n", -1));
    }

    /** Deletes a test's temp dir, unless KASKADE_JVM_APPS_KEEP=1 asks to keep it. */
    static void deleteTree(Path dir) {
        if ("1".equals(System.getenv("KASKADE_JVM_APPS_KEEP"))) {
            log("kept " + dir + " (KASKADE_JVM_APPS_KEEP=1)");
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }

    static <T> String sample(Collection<T> c, int n) {
        return c.stream().limit(n).map(String::valueOf).collect(Collectors.joining(", ", "[", c.size() > n ? ", ...]" : "]"));
    }

    static Set<String> internalTopicsWithPrefix(Admin admin, String prefix) throws Exception {
        return admin.listTopics(new org.apache.kafka.clients.admin.ListTopicsOptions().listInternal(true))
                .names().get().stream().filter(n -> n.startsWith(prefix)).collect(Collectors.toSet());
    }
}
