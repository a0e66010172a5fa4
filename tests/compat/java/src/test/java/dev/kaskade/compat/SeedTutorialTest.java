package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Seed 000's OrderProducer and OrderConsumer (src/main/java), run as separate
 * JVMs the way the tutorial's reader runs them: consumer first, then producer;
 * the consumer must print the three records the producer reports.
 */
class SeedTutorialTest {
    private static final Pattern SENT = Pattern.compile("^sent to (.+)-(\\d+)@(\\d+)$");

    /** Lines a child process printed, collected by a reader thread. */
    static final class Child {
        final Process process;
        final List<String> out = Collections.synchronizedList(new ArrayList<>());
        final List<String> err = Collections.synchronizedList(new ArrayList<>());

        Child(String mainClass) throws Exception {
            String cp = System.getProperty("compat.module.classpath");
            if (cp == null || cp.isBlank() || cp.contains("${")) {
                fail("system property compat.module.classpath is not set (run the tests through Maven)");
            }
            String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
            ProcessBuilder pb = new ProcessBuilder(java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", cp, mainClass);
            pb.environment().put("KASKADE_BOOTSTRAP", Compat.bootstrap());
            process = pb.start();
            drain(process.getInputStream(), out, mainClass + " stdout");
            drain(process.getErrorStream(), err, mainClass + " stderr");
        }

        private static void drain(InputStream in, List<String> sink, String name) {
            Thread t = new Thread(() -> {
                try (var r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        sink.add(line);
                    }
                } catch (Exception ignored) {
                    // the process ended
                }
            }, name);
            t.setDaemon(true);
            t.start();
        }

        String transcript() {
            synchronized (out) {
                synchronized (err) {
                    return "stdout:\n  " + String.join("\n  ", out) + "\nstderr:\n  " + String.join("\n  ", err);
                }
            }
        }

        void kill() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /**
     * A consumer killed by an earlier run stays a member of example-consumer until
     * its session times out (45 s), delaying the next join. Removing the members is
     * housekeeping only (Admin RemoveMembersFromConsumerGroup, i.e. LeaveGroup v3+),
     * its result is not part of the test.
     */
    private static void removeLeftoverMembers(Admin admin) {
        try {
            admin.removeMembersFromConsumerGroup("example-consumer", new RemoveMembersFromConsumerGroupOptions())
                    .all().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            System.err.println("[seed] note: removing leftover members of example-consumer: " + e);
        }
    }

    @Test
    @Timeout(240)
    void tutorialProducerAndConsumerAsSeparateProcesses() throws Exception {
        try (Admin admin = Compat.admin()) {
            // The tutorial creates `orders` with 3 partitions (kafka-topics.sh --create).
            Compat.createTopic(admin, "orders", 3);
            removeLeftoverMembers(admin);

            Child consumer = new Child("OrderConsumer");
            try {
                // Wait (bounded, informational) until the consumer has joined its group,
                // as a reader would start the producer once the consumer is up.
                long deadline = System.nanoTime() + Compat.TIMEOUT.toNanos();
                boolean joined = false;
                while (!joined && System.nanoTime() < deadline && consumer.process.isAlive()) {
                    try {
                        var d = admin.describeConsumerGroups(List.of("example-consumer")).all()
                                .get(10, TimeUnit.SECONDS).get("example-consumer");
                        joined = d.members().stream().anyMatch(m -> !m.assignment().topicPartitions().isEmpty());
                    } catch (Exception e) {
                        // not there yet
                    }
                    if (!joined) {
                        Thread.sleep(200);
                    }
                }
                assertTrue(consumer.process.isAlive(), "OrderConsumer exited early\n" + consumer.transcript());
                if (!joined) {
                    System.err.println("[seed] note: consumer not seen in a stable group after " + Compat.TIMEOUT_S + " s; producing anyway");
                }

                Child producer = new Child("OrderProducer");
                boolean ended = producer.process.waitFor(90, TimeUnit.SECONDS);
                if (!ended) {
                    producer.kill();
                    fail("OrderProducer did not finish within 90 s\n" + producer.transcript());
                }
                Thread.sleep(100); // let the reader threads take the last lines
                assertEquals(0, producer.process.exitValue(), "OrderProducer exit code\n" + producer.transcript());

                List<String> sent = new ArrayList<>(producer.out);
                assertEquals(3, sent.size(), "OrderProducer prints one line per record\n" + producer.transcript());
                List<String> expected = new ArrayList<>();
                for (int i = 1; i <= 3; i++) {
                    Matcher m = SENT.matcher(sent.get(i - 1));
                    assertTrue(m.matches(), "unexpected producer line: " + sent.get(i - 1));
                    assertEquals("orders", m.group(1));
                    int partition = Integer.parseInt(m.group(2));
                    long offset = Long.parseLong(m.group(3));
                    assertTrue(partition >= 0 && partition < 3, "partition " + partition);
                    assertTrue(offset >= 0, "offset " + offset);
                    expected.add(String.format("received key=customer-%d value={\"orderId\":%d,\"amount\":%d} partition=%d offset=%d",
                            i, i, i * 10, partition, offset));
                }

                // The consumer must print exactly these three records (the topic may hold
                // older ones from earlier runs: only this run's three are checked).
                Compat.waitUntil("OrderConsumer printed " + expected, Duration.ofSeconds(90), () -> {
                    synchronized (consumer.out) {
                        return consumer.out.containsAll(expected);
                    }
                });
                assertTrue(consumer.process.isAlive(), "OrderConsumer still running\n" + consumer.transcript());
            } catch (AssertionError e) {
                throw new AssertionError(e.getMessage() + "\nOrderConsumer " + consumer.transcript(), e);
            } finally {
                consumer.kill();
                removeLeftoverMembers(admin);
            }
        }
    }
}
