package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/** Shared helpers: broker address, timeouts, unique names, client factories. */
final class Compat {
    private Compat() {}

    /** host:port of the broker under test (Kaskade or Apache Kafka). */
    static String bootstrap() {
        String b = System.getenv("KASKADE_BOOTSTRAP");
        if (b == null || b.isBlank()) {
            fail("KASKADE_BOOTSTRAP is not set (host:port of the broker under test)");
        }
        return b;
    }

    /**
     * How many brokers the cluster under test has, each of them also a voter of
     * the metadata quorum (combined nodes, as scripts/cluster.sh starts them):
     * KASKADE_COMPAT_BROKERS, which the runner sets; 1 (a single node) by default.
     */
    static final int BROKERS = Integer.parseInt(System.getenv().getOrDefault("KASKADE_COMPAT_BROKERS", "1"));

    /** The port of the first bootstrap address (the node the clients start from). */
    static int bootstrapPort() {
        String first = bootstrap().split(",")[0].trim();
        return Integer.parseInt(first.substring(first.lastIndexOf(':') + 1));
    }

    /** Seconds any one thing may take (delivery, metadata, reading). */
    static final int TIMEOUT_S = Integer.parseInt(System.getenv().getOrDefault("KASKADE_COMPAT_TIMEOUT", "30"));
    static final Duration TIMEOUT = Duration.ofSeconds(TIMEOUT_S);

    static String unique(String what) {
        return "compat-java-" + what + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(TIMEOUT_S * 1000));
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(TIMEOUT_S * 1000));
        return Admin.create(p);
    }

    static Properties producerProps() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return p;
    }

    static KafkaProducer<String, String> producer(Map<String, Object> extra) {
        Properties p = producerProps();
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(TIMEOUT_S * 1000, 30000) + 10000));
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(TIMEOUT_S * 1000, 30000)));
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(TIMEOUT_S * 1000));
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static Properties consumerProps(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(TIMEOUT_S * 1000));
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return p;
    }

    static KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        Properties p = consumerProps(group);
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    /** Creates a topic and waits until its metadata shows a leader for every partition. */
    static void createTopic(Admin admin, String topic, int partitions) throws Exception {
        createTopic(admin, topic, partitions, Map.of());
    }

    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs) throws Exception {
        NewTopic nt = new NewTopic(topic, partitions, (short) 1).configs(configs);
        try {
            get(admin.createTopics(List.of(nt)).all());
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
        waitUntil("topic " + topic + " has a leader for each of its " + partitions + " partitions", () -> {
            try {
                var d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
                return d.partitions().size() >= partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0);
            } catch (Exception e) {
                return false;
            }
        });
    }

    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    /** Polls cond every 100 ms until it holds; fails the test after TIMEOUT. */
    static void waitUntil(String what, BooleanSupplier cond) {
        waitUntil(what, TIMEOUT, cond);
    }

    static void waitUntil(String what, Duration limit, BooleanSupplier cond) {
        long deadline = System.nanoTime() + limit.toNanos();
        while (true) {
            if (cond.getAsBoolean()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                fail("timed out after " + limit.toSeconds() + " s waiting until " + what);
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                fail("interrupted waiting until " + what);
            }
        }
    }

    /** Polls the consumer until `count` records arrived (more may arrive: all are returned). */
    static List<ConsumerRecord<String, String>> pollAtLeast(KafkaConsumer<String, String> c, int count, Duration limit) {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        long deadline = System.nanoTime() + limit.toNanos();
        while (out.size() < count) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + limit.toSeconds() + " s: got " + out.size() + " of " + count + " records: " + out);
            }
            for (var r : c.poll(Duration.ofMillis(200))) {
                out.add(r);
            }
        }
        return out;
    }

    static List<ConsumerRecord<String, String>> pollAtLeast(KafkaConsumer<String, String> c, int count) {
        return pollAtLeast(c, count, TIMEOUT);
    }

    /** The root cause chain, outermost first. */
    static List<Throwable> causes(Throwable t) {
        List<Throwable> out = new ArrayList<>();
        while (t != null && !out.contains(t)) {
            out.add(t);
            t = t.getCause();
        }
        return out;
    }

    static boolean hasCause(Throwable t, Collection<Class<? extends Throwable>> types) {
        for (Throwable c : causes(t)) {
            for (Class<? extends Throwable> k : types) {
                if (k.isInstance(c)) {
                    return true;
                }
            }
        }
        return false;
    }

    static Map<TopicPartition, Long> map(Object... kv) {
        Map<TopicPartition, Long> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((TopicPartition) kv[i], ((Number) kv[i + 1]).longValue());
        }
        return m;
    }
}
