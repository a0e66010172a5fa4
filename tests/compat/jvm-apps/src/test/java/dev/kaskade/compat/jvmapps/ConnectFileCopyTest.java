package dev.kaskade.compat.jvmapps;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Kafka Connect in distributed mode (ConnectDistributed, its own JVM): a
 * FileStreamSource connector copies a file into a topic and a FileStreamSink
 * connector copies the topic into another file. The worker is stopped
 * (SIGTERM, or SIGKILL) and restarted with the same group and storage topics
 * while the source file grows; the output file must end up as the source.
 */
class ConnectFileCopyTest {
    private static final long WAIT_MS = 120_000;

    /** What a test run set up: worker, files, topic, connector names. */
    private static final class Setup {
        Path dir;
        Path src;
        Path dst;
        String topic;
        String srcName;
        String sinkName;
        ConnectWorker worker;
        final List<String> lines = new ArrayList<>();
    }

    @Test
    @Timeout(value = 420, unit = TimeUnit.SECONDS)
    void distributedWorkerSigtermRestartCopiesExactlyOnce() throws Exception {
        runTest("connect-term", false);
    }

    @Test
    @Timeout(value = 420, unit = TimeUnit.SECONDS)
    void distributedWorkerSigkillRestartCopiesAtLeastOnce() throws Exception {
        runTest("connect-kill", true);
    }

    private void runTest(String label, boolean sigkill) throws Exception {
        Setup s = new Setup();
        String id = Util.unique("compat-jvmapps-" + label);
        s.dir = Files.createTempDirectory("jvm-apps-" + label + "-");
        s.src = s.dir.resolve("source.txt");
        s.dst = s.dir.resolve("sink.txt");
        s.topic = id + "-lines";
        s.srcName = id + "-file-source";
        s.sinkName = id + "-file-sink";
        Util.log("Connect test (" + (sigkill ? "SIGKILL" : "SIGTERM") + "): group.id=" + id + " dir=" + s.dir);
        boolean ok = false;
        List<ChildJvm> jvms = new ArrayList<>();
        try (Admin admin = Util.admin()) {
            // One partition: the sink then sees the lines in file order.
            Util.createTopics(admin, 1, s.topic);
            append(s, 2000, "a");
            s.worker = new ConnectWorker(s.dir, id);
            s.worker.start();
            jvms.add(s.worker.jvm);
            s.worker.awaitRest(WAIT_MS);
            Util.log("worker 1 REST API is up on port " + s.worker.port);
            s.worker.createConnector(s.srcName, Map.of(
                    "connector.class", "org.apache.kafka.connect.file.FileStreamSourceConnector",
                    "tasks.max", "1",
                    "file", s.src.toString(),
                    "topic", s.topic), WAIT_MS);
            s.worker.createConnector(s.sinkName, Map.of(
                    "connector.class", "org.apache.kafka.connect.file.FileStreamSinkConnector",
                    "tasks.max", "1",
                    "file", s.dst.toString(),
                    "topics", s.topic), WAIT_MS);
            awaitExactCopy(s, "after the first start");
            Util.log("output file has the " + s.lines.size() + " source lines");

            // Connect created its three storage topics, compacted.
            for (String t : List.of(s.worker.configTopic, s.worker.offsetTopic, s.worker.statusTopic)) {
                ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
                Config c = admin.describeConfigs(List.of(r)).all().get().get(r);
                String policy = c.get("cleanup.policy") == null ? null : c.get("cleanup.policy").value();
                assertEquals("compact", policy, "cleanup.policy of Connect's storage topic " + t);
            }
            Util.log("storage topics are compacted");

            if (!sigkill) {
                assertTrue(s.worker.jvm.stop(60), "the Connect worker did not exit within 60 s of SIGTERM"
                        + s.worker.jvm.tails(60));
                append(s, 1000, "b");
                s.worker.start();
                jvms.add(s.worker.jvm);
                s.worker.awaitRest(WAIT_MS);
                Util.log("worker restarted after SIGTERM");
                awaitExactCopy(s, "after the SIGTERM restart");
                // Nothing was produced twice into the topic either.
                long end = Util.endOffsets(admin, s.topic).get(new TopicPartition(s.topic, 0));
                assertEquals(s.lines.size(), end, "records in " + s.topic + " (end offset of its one partition) after "
                        + "a clean restart: expected one per source line");
                awaitSinkCommitted(admin, s, end);
            } else {
                // Append more, let some of it through, and SIGKILL mid-copy.
                int before = Util.completeLines(s.dst).size();
                append(s, 3000, "b");
                long deadline = System.currentTimeMillis() + WAIT_MS;
                while (Util.completeLines(s.dst).size() <= before) {
                    if (System.currentTimeMillis() > deadline || !s.worker.jvm.alive()) {
                        fail("the output file did not grow past " + before + " lines after appending to the source"
                                + s.worker.jvm.tails(60));
                    }
                    Thread.sleep(20);
                }
                s.worker.jvm.kill();
                int atKill = Util.completeLines(s.dst).size();
                Util.log("SIGKILLed the worker with " + atKill + " of " + s.lines.size() + " lines in the output file");
                append(s, 1000, "c");
                s.worker.start();
                jvms.add(s.worker.jvm);
                s.worker.awaitRest(WAIT_MS);
                Util.log("worker restarted after SIGKILL");
                List<String> out = awaitAtLeastOnceCopy(s);
                long end = Util.endOffsets(admin, s.topic).get(new TopicPartition(s.topic, 0));
                Util.log("after SIGKILL + restart: output " + out.size() + " lines for " + s.lines.size()
                        + " source lines (" + (out.size() - s.lines.size()) + " duplicates), topic has " + end
                        + " records (" + (end - s.lines.size()) + " produced twice)");
                assertTrue(end >= s.lines.size(), "topic " + s.topic + " has " + end + " records, fewer than the "
                        + s.lines.size() + " source lines");
                awaitSinkCommitted(admin, s, end);
            }
            String st1 = s.worker.status(s.srcName);
            String st2 = s.worker.status(s.sinkName);
            assertTrue(st1.startsWith("200") && !st1.contains("FAILED"), "source connector status: " + st1);
            assertTrue(st2.startsWith("200") && !st2.contains("FAILED"), "sink connector status: " + st2);
            // A courtesy stop (the worker leaves its group); not a check.
            if (!s.worker.jvm.stop(15)) {
                s.worker.jvm.kill();
            }
            ok = true;
        } finally {
            for (ChildJvm j : jvms) {
                j.kill();
            }
            if (ok) {
                Util.deleteTree(s.dir);
            } else {
                Util.log("kept " + s.dir + " (worker stdout, logs, files)");
                for (ChildJvm j : jvms) {
                    System.out.println(j.tails(80));
                }
            }
        }
    }

    /** Appends n distinct lines to the source file (one write). */
    private static void append(Setup s, int n, String tag) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            String line = String.format("%s-%06d %s", tag, s.lines.size() + 1,
                    UUID.randomUUID().toString().substring(0, 13));
            s.lines.add(line);
            sb.append(line).append('\n');
        }
        Files.writeString(s.src, sb.toString(), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.WRITE);
    }

    /**
     * Waits until the output file is exactly the source, failing at once if it
     * ever stops being a prefix of the source (a duplicate, a gap, a reorder).
     */
    private static void awaitExactCopy(Setup s, String when) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        List<String> out = List.of();
        while (true) {
            out = Util.completeLines(s.dst);
            int mismatch = firstMismatch(s.lines, out);
            if (mismatch >= 0) {
                fail(when + ": output line " + (mismatch + 1) + " is " + quote(out, mismatch) + " but source line "
                        + (mismatch + 1) + " is " + quote(s.lines, mismatch) + " (output has " + out.size()
                        + " lines, source " + s.lines.size() + ")" + s.worker.jvm.tails(60));
            }
            if (out.size() == s.lines.size()) {
                return;
            }
            if (!s.worker.jvm.alive()) {
                fail(when + ": the Connect worker exited (status " + s.worker.jvm.exitCode() + ") with " + out.size()
                        + " of " + s.lines.size() + " lines copied" + s.worker.jvm.tails(80));
            }
            if (System.currentTimeMillis() > deadline) {
                fail(when + ": after " + WAIT_MS / 1000 + " s the output file has " + out.size() + " of "
                        + s.lines.size() + " lines; source connector " + s.worker.status(s.srcName)
                        + "; sink connector " + s.worker.status(s.sinkName) + s.worker.jvm.tails(80));
            }
            Thread.sleep(200);
        }
    }

    /**
     * After a SIGKILL: waits until every source line is in the output, in
     * source order of first appearance; repeats (at-least-once replays) are
     * allowed, lines that are not in the source are not.
     */
    private static List<String> awaitAtLeastOnceCopy(Setup s) throws Exception {
        Set<String> source = new HashSet<>(s.lines);
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (true) {
            List<String> out = Util.completeLines(s.dst);
            for (int i = 0; i < out.size(); i++) {
                if (!source.contains(out.get(i))) {
                    fail("output line " + (i + 1) + " " + quote(out, i) + " is not a source line" + s.worker.jvm.tails(60));
                }
            }
            List<String> firsts = new ArrayList<>(new LinkedHashSet<>(out));
            int mismatch = firstMismatch(s.lines, firsts);
            if (mismatch >= 0) {
                fail("after the SIGKILL restart the output, duplicates removed, differs from the source at line "
                        + (mismatch + 1) + ": " + quote(firsts, mismatch) + " vs " + quote(s.lines, mismatch)
                        + s.worker.jvm.tails(60));
            }
            if (firsts.size() == s.lines.size()) {
                return out;
            }
            if (!s.worker.jvm.alive()) {
                fail("the restarted Connect worker exited (status " + s.worker.jvm.exitCode() + ") with "
                        + firsts.size() + " of " + s.lines.size() + " distinct lines copied" + s.worker.jvm.tails(80));
            }
            if (System.currentTimeMillis() > deadline) {
                fail("after " + WAIT_MS / 1000 + " s the output file has " + firsts.size() + " of " + s.lines.size()
                        + " distinct source lines (" + out.size() + " lines); source connector "
                        + s.worker.status(s.srcName) + "; sink connector " + s.worker.status(s.sinkName)
                        + s.worker.jvm.tails(80));
            }
            Thread.sleep(200);
        }
    }

    /** The sink connector's consumer group (connect-NAME) commits the topic's end offset. */
    private static void awaitSinkCommitted(Admin admin, Setup s, long end) throws Exception {
        String group = "connect-" + s.sinkName;
        TopicPartition tp = new TopicPartition(s.topic, 0);
        long deadline = System.currentTimeMillis() + 60_000;
        Map<TopicPartition, OffsetAndMetadata> committed = Map.of();
        while (System.currentTimeMillis() < deadline) {
            committed = admin.listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec()))
                    .partitionsToOffsetAndMetadata(group).get();
            OffsetAndMetadata om = committed.get(tp);
            if (om != null && om.offset() == end) {
                Util.log("sink group " + group + " committed offset " + end + " (the end of " + s.topic + ")");
                return;
            }
            Thread.sleep(250);
        }
        fail("sink group " + group + " committed " + committed + ", never the end offset " + end + " of " + tp
                + s.worker.jvm.tails(40));
    }

    private static int firstMismatch(List<String> expected, List<String> actual) {
        for (int i = 0; i < actual.size(); i++) {
            if (i >= expected.size() || !expected.get(i).equals(actual.get(i))) {
                return i;
            }
        }
        return -1;
    }

    private static String quote(List<String> l, int i) {
        return i < l.size() ? "\"" + l.get(i) + "\"" : "(none)";
    }
}
