package dev.kaskade.compat.jvmapps;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A Kafka Connect worker in distributed mode (ConnectDistributed) in its own
 * JVM, and its REST API. The worker config (group, storage topics, REST port)
 * is fixed at construction, so every start() is a restart of the same worker.
 */
final class ConnectWorker {
    static final String MAIN = "org.apache.kafka.connect.cli.ConnectDistributed";

    final String groupId;
    final String configTopic;
    final String offsetTopic;
    final String statusTopic;
    final int port;
    private final Path dir;
    private final Path props;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private int starts;
    ChildJvm jvm;

    ConnectWorker(Path dir, String groupId) throws IOException {
        this.dir = dir;
        this.groupId = groupId;
        this.configTopic = groupId + "-configs";
        this.offsetTopic = groupId + "-offsets";
        this.statusTopic = groupId + "-status";
        this.port = Util.freePort();
        this.props = dir.resolve("worker.properties");
        Files.writeString(props, String.join("\n",
                "bootstrap.servers=" + Util.bootstrap(),
                "group.id=" + groupId,
                "config.storage.topic=" + configTopic,
                "offset.storage.topic=" + offsetTopic,
                "status.storage.topic=" + statusTopic,
                "config.storage.replication.factor=1",
                "offset.storage.replication.factor=1",
                "status.storage.replication.factor=1",
                "offset.storage.partitions=5",
                "status.storage.partitions=1",
                "key.converter=org.apache.kafka.connect.storage.StringConverter",
                "value.converter=org.apache.kafka.connect.storage.StringConverter",
                "listeners=http://127.0.0.1:" + port,
                "rest.advertised.host.name=127.0.0.1",
                "rest.advertised.port=" + port,
                "offset.flush.interval.ms=500",
                // A killed worker's assignments are handed out again after 2 s
                // (the default waits 5 minutes for it to come back).
                "scheduled.rebalance.max.delay.ms=2000",
                "session.timeout.ms=6000",
                "heartbeat.interval.ms=2000",
                // The sink task's consumer: a killed member leaves its group soon.
                "consumer.session.timeout.ms=6000",
                "consumer.heartbeat.interval.ms=2000",
                // The FileStream connectors: connect-file 4.3.1 (4.4.0 is not
                // on Maven Central) with its kafka-clients 4.3.1, isolated on
                // the plugin.path (see pom.xml). They ship ServiceLoader
                // manifests, so no reflective scan is needed.
                "plugin.path=" + System.getProperty("jvmapps.pluginPath", "target/plugins"),
                "plugin.discovery=service_load",
                ""));
    }

    String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    void start() throws IOException {
        starts++;
        jvm = ChildJvm.start(dir, "connect-worker-" + starts, "384m", MAIN, List.of(props.toString()));
    }

    /** Waits until the REST API answers GET /connectors with 200. */
    void awaitRest(long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = "no answer";
        while (System.currentTimeMillis() < deadline) {
            if (!jvm.alive()) {
                throw new AssertionError("Connect worker exited (status " + jvm.exitCode() + ") before its REST API served"
                        + jvm.tails(80));
            }
            try {
                HttpResponse<String> r = get("/connectors");
                if (r.statusCode() == 200) {
                    return;
                }
                last = r.statusCode() + " " + r.body();
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(500);
        }
        throw new AssertionError("Connect REST API at " + url("/connectors") + " did not answer 200 within "
                + timeoutMs / 1000 + " s; last: " + last + jvm.tails(80));
    }

    HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(url(path))).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /**
     * POST /connectors, retried while the worker is still joining its group
     * (409 rebalance in progress, 5xx request timed out), until 201.
     */
    void createConnector(String name, Map<String, String> config, long timeoutMs) throws Exception {
        String body = "{\"name\":" + json(name) + ",\"config\":{" + config.entrySet().stream()
                .map(e -> json(e.getKey()) + ":" + json(e.getValue())).collect(Collectors.joining(",")) + "}}";
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = "";
        while (System.currentTimeMillis() < deadline) {
            if (!jvm.alive()) {
                throw new AssertionError("Connect worker exited (status " + jvm.exitCode() + ")" + jvm.tails(80));
            }
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url("/connectors")))
                                .timeout(Duration.ofSeconds(95))
                                .header("Content-Type", "application/json")
                                .POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 201) {
                    Util.log("created connector " + name);
                    return;
                }
                last = r.statusCode() + " " + r.body();
                if (r.statusCode() != 409 && r.statusCode() < 500) {
                    throw new AssertionError("POST /connectors for " + name + " answered " + last);
                }
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(500);
        }
        throw new AssertionError("POST /connectors for " + name + " did not succeed within " + timeoutMs / 1000
                + " s; last answer: " + last + jvm.tails(80));
    }

    /** GET /connectors/NAME/status body, or the error, for messages. */
    String status(String name) {
        try {
            HttpResponse<String> r = get("/connectors/" + name + "/status");
            return r.statusCode() + " " + r.body();
        } catch (Exception e) {
            return e.toString();
        }
    }

    static String json(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}
