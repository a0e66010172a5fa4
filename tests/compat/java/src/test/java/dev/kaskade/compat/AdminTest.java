package dev.kaskade.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.SecurityDisabledException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Admin client against the broker. */
class AdminTest {

    private static Throwable failureOf(org.apache.kafka.common.KafkaFuture<?> f) throws Exception {
        try {
            f.get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (java.util.concurrent.TimeoutException e) {
            fail("no answer within " + Compat.TIMEOUT_S + " s (the client should get a clean error, not hang)");
        }
        return null;
    }

    private static int nodeId(Admin admin) throws Exception {
        Collection<Node> nodes = Compat.get(admin.describeCluster().nodes());
        assertFalse(nodes.isEmpty(), "describeCluster lists the broker");
        return nodes.iterator().next().id();
    }

    @Test
    @Timeout(120)
    void topicLifecycleAndCreatePartitions() throws Exception {
        String topic = Compat.unique("admin-topic");
        try (Admin admin = Compat.admin()) {
            Compat.get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("retention.ms", "7200000")))).all());
            Compat.waitUntil("topic listed", () -> {
                try {
                    return Compat.get(admin.listTopics().names()).contains(topic);
                } catch (Exception e) {
                    return false;
                }
            });
            TopicDescription d = Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            assertEquals(topic, d.name());
            assertFalse(d.isInternal());
            assertNotNull(d.topicId());
            assertEquals(3, d.partitions().size());
            for (int i = 0; i < 3; i++) {
                assertEquals(i, d.partitions().get(i).partition());
                assertNotNull(d.partitions().get(i).leader(), "leader of partition " + i);
                assertEquals(1, d.partitions().get(i).replicas().size());
                assertEquals(1, d.partitions().get(i).isr().size());
            }

            Throwable again = failureOf(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all());
            assertTrue(again instanceof TopicExistsException, "create again: " + again);

            Compat.get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
            Compat.waitUntil("topic has 5 partitions", () -> {
                try {
                    return Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size() == 5;
                } catch (Exception e) {
                    return false;
                }
            });
            Throwable shrink = failureOf(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all());
            assertTrue(shrink instanceof org.apache.kafka.common.errors.InvalidPartitionsException, "shrink: " + shrink);

            Compat.get(admin.deleteTopics(List.of(topic)).all());
            Compat.waitUntil("topic gone from listTopics", () -> {
                try {
                    return !Compat.get(admin.listTopics().names()).contains(topic);
                } catch (Exception e) {
                    return false;
                }
            });
            Throwable gone = failureOf(admin.describeTopics(List.of(topic)).allTopicNames());
            assertTrue(gone instanceof UnknownTopicOrPartitionException, "describe deleted: " + gone);
            Throwable deleteAgain = failureOf(admin.deleteTopics(List.of(topic)).all());
            assertTrue(deleteAgain instanceof UnknownTopicOrPartitionException, "delete again: " + deleteAgain);
        }
    }

    @Test
    @Timeout(120)
    void describeTopicByTopicId() throws Exception {
        String topic = Compat.unique("admin-topic-id");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
            TopicDescription d = Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
            assertNotNull(d.topicId());
            assertFalse(d.topicId().equals(org.apache.kafka.common.Uuid.ZERO_UUID), "a real topic id");
            // Metadata request by topic id (name left as "" by the client, id set)
            var byId = Compat.get(admin.describeTopics(org.apache.kafka.common.TopicCollection.ofTopicIds(List.of(d.topicId())))
                    .allTopicIds()).get(d.topicId());
            assertEquals(topic, byId.name());
            assertEquals(2, byId.partitions().size());
            Throwable unknown = failureOf(admin.describeTopics(org.apache.kafka.common.TopicCollection.ofTopicIds(
                    List.of(org.apache.kafka.common.Uuid.randomUuid()))).allTopicIds());
            assertTrue(unknown instanceof org.apache.kafka.common.errors.UnknownTopicIdException, "unknown id: " + unknown);
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(120)
    void topicConfigsDescribeAndIncrementalAlter() throws Exception {
        String topic = Compat.unique("admin-config");
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1, Map.of("retention.ms", "7200000"));
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config c = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res);
            ConfigEntry retention = c.get("retention.ms");
            assertNotNull(retention);
            assertEquals("7200000", retention.value());
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
            ConfigEntry cleanup = c.get("cleanup.policy");
            assertNotNull(cleanup, "cleanup.policy is described");
            assertEquals("delete", cleanup.value());
            assertTrue(cleanup.isDefault());

            Compat.get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
            Compat.waitUntil("altered topic configs visible", () -> {
                try {
                    Config after = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res);
                    return "compact".equals(after.get("cleanup.policy").value())
                            && "200000".equals(after.get("max.message.bytes").value())
                            && after.get("retention.ms").source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG;
                } catch (Exception e) {
                    return false;
                }
            });
            Config after = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res);
            assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, after.get("cleanup.policy").source());
            assertEquals("604800000", after.get("retention.ms").value(), "retention.ms back to the default");

            // An invalid value is rejected with InvalidConfigurationException
            Throwable bad = failureOf(admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "bogus"), AlterConfigOp.OpType.SET)))).all());
            assertTrue(bad instanceof org.apache.kafka.common.errors.InvalidConfigurationException
                    || bad instanceof org.apache.kafka.common.errors.InvalidRequestException, "invalid value: " + bad);
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(120)
    void brokerConfigsDescribe() throws Exception {
        try (Admin admin = Compat.admin()) {
            int node = nodeId(admin);
            ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node));
            Config c = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res);
            ConfigEntry mmb = c.get("message.max.bytes");
            assertNotNull(mmb, "message.max.bytes described");
            assertEquals("1048588", mmb.value());
            assertNotNull(c.get("log.cleaner.threads"), "log.cleaner.threads described");
            assertEquals("1", c.get("log.cleaner.threads").value(), "log.cleaner.threads default");
        }
    }

    @Test
    @Timeout(120)
    void brokerConfigIncrementalAlterPerBroker() throws Exception {
        try (Admin admin = Compat.admin()) {
            int node = nodeId(admin);
            ConfigResource res = new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node));
            // log.cleaner.threads is dynamically updatable per broker in Apache Kafka.
            Compat.get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("log.cleaner.threads", "2"), AlterConfigOp.OpType.SET)))).all());
            try {
                Compat.waitUntil("log.cleaner.threads=2 described as a dynamic broker config", () -> {
                    try {
                        ConfigEntry e = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res).get("log.cleaner.threads");
                        return e != null && "2".equals(e.value()) && e.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG;
                    } catch (Exception e) {
                        return false;
                    }
                });
            } finally {
                Compat.get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                        new AlterConfigOp(new ConfigEntry("log.cleaner.threads", ""), AlterConfigOp.OpType.DELETE)))).all());
            }
            Compat.waitUntil("log.cleaner.threads back to 1", () -> {
                try {
                    ConfigEntry e = Compat.get(admin.describeConfigs(List.of(res)).all()).get(res).get("log.cleaner.threads");
                    return e != null && "1".equals(e.value());
                } catch (Exception e) {
                    return false;
                }
            });
            // A static-only broker config cannot be changed at runtime.
            Throwable bad = failureOf(admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("log.dirs", "/tmp/nope"), AlterConfigOp.OpType.SET)))).all());
            assertTrue(bad instanceof org.apache.kafka.common.errors.InvalidRequestException
                    || bad instanceof org.apache.kafka.common.errors.InvalidConfigurationException, "static config: " + bad);
        }
    }

    @SuppressWarnings("deprecation")
    @Test
    @Timeout(120)
    void consumerGroupsListDescribeOffsetsAlterDelete() throws Exception {
        String topic = Compat.unique("admin-groups");
        String group = Compat.unique("admin-group");
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 2);
            try (var p = Compat.producer(Map.of())) {
                for (int i = 0; i < 6; i++) {
                    p.send(new ProducerRecord<>(topic, i % 2, "k" + i, "v" + i));
                }
                p.flush();
            }
            try (KafkaConsumer<String, String> c = Compat.consumer(group, Map.of())) {
                c.subscribe(List.of(topic));
                Compat.pollAtLeast(c, 6);
                c.commitSync();

                ConsumerGroupDescription d = Compat.get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
                assertEquals(group, d.groupId());
                assertEquals(ConsumerGroupState.STABLE, d.state());
                assertFalse(d.isSimpleConsumerGroup());
                assertEquals(1, d.members().size());
                var member = d.members().iterator().next();
                assertEquals(c.groupMetadata().memberId(), member.consumerId());
                assertEquals(Set.of(tp0, tp1), member.assignment().topicPartitions());
                assertNotNull(d.coordinator());
                assertEquals("range", d.partitionAssignor());

                Collection<ConsumerGroupListing> listed = Compat.get(admin.listConsumerGroups().all());
                Optional<ConsumerGroupListing> mine = listed.stream().filter(l -> l.groupId().equals(group)).findFirst();
                assertTrue(mine.isPresent(), "listConsumerGroups has the group");
                assertEquals(Optional.of(ConsumerGroupState.STABLE), mine.get().state());

                Map<TopicPartition, OffsetAndMetadata> offs = Compat.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
                assertEquals(3, offs.get(tp0).offset());
                assertEquals(3, offs.get(tp1).offset());

                // A non-empty group cannot be deleted, and its offsets cannot be altered.
                Throwable busy = failureOf(admin.deleteConsumerGroups(List.of(group)).all());
                assertTrue(busy instanceof org.apache.kafka.common.errors.GroupNotEmptyException, "delete active group: " + busy);
                Throwable alterBusy = failureOf(admin.alterConsumerGroupOffsets(group, Map.of(tp0, new OffsetAndMetadata(1))).all());
                assertTrue(alterBusy instanceof org.apache.kafka.common.errors.UnknownMemberIdException, "alter active group: " + alterBusy);
            }
            Compat.waitUntil("group empty after close", () -> {
                try {
                    return Compat.get(admin.describeConsumerGroups(List.of(group)).all()).get(group).state() == ConsumerGroupState.EMPTY;
                } catch (Exception e) {
                    return false;
                }
            });
            Compat.get(admin.alterConsumerGroupOffsets(group, Map.of(tp0, new OffsetAndMetadata(1, "reset"))).all());
            Map<TopicPartition, OffsetAndMetadata> offs = Compat.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertEquals(1, offs.get(tp0).offset());
            assertEquals("reset", offs.get(tp0).metadata());
            assertEquals(3, offs.get(tp1).offset());
            Compat.get(admin.deleteConsumerGroupOffsets(group, Set.of(tp1)).all());
            offs = Compat.get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            assertNull(offs.get(tp1), "tp1 offset deleted: " + offs);

            Compat.get(admin.deleteConsumerGroups(List.of(group)).all());
            Collection<ConsumerGroupListing> listed = Compat.get(admin.listConsumerGroups().all());
            assertTrue(listed.stream().noneMatch(l -> l.groupId().equals(group)), "group deleted");
            Throwable again = failureOf(admin.deleteConsumerGroups(List.of(group)).all());
            assertTrue(again instanceof GroupIdNotFoundException, "delete again: " + again);
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(120)
    void listOffsetsSpecsAndDeleteRecords() throws Exception {
        String topic = Compat.unique("admin-offsets");
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = System.currentTimeMillis() - 3_600_000;
        long[] ts = {base + 1000, base + 5000, base + 2000, base + 3000, base + 4000};
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            try (var p = Compat.producer(Map.of())) {
                for (int i = 0; i < ts.length; i++) {
                    // one batch per record
                    p.send(new ProducerRecord<>(topic, 0, ts[i], "k" + i, "v" + i)).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                }
            }
            ListOffsetsResult.ListOffsetsResultInfo earliest = Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp));
            assertEquals(0, earliest.offset());
            ListOffsetsResult.ListOffsetsResultInfo latest = Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp));
            assertEquals(5, latest.offset());
            ListOffsetsResult.ListOffsetsResultInfo forTs = Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 2500))).partitionResult(tp));
            assertEquals(1, forTs.offset(), "first offset whose timestamp >= base+2.5s");
            assertEquals(base + 5000, forTs.timestamp());
            ListOffsetsResult.ListOffsetsResultInfo forLate = Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(base + 10_000))).partitionResult(tp));
            assertEquals(-1, forLate.offset(), "no offset after the last timestamp");
            ListOffsetsResult.ListOffsetsResultInfo max = Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp));
            assertEquals(1, max.offset(), "offset of the max timestamp");
            assertEquals(base + 5000, max.timestamp());

            var deleted = Compat.get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(2))).lowWatermarks().get(tp));
            assertEquals(2, deleted.lowWatermark());
            assertEquals(2, Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
            assertEquals(5, Compat.get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset());
            try (KafkaConsumer<String, String> c = Compat.consumer(null, Map.of())) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(c, 3);
                assertEquals(List.of(2L, 3L, 4L), got.stream().map(ConsumerRecord::offset).collect(Collectors.toList()));
            }
            Throwable beyond = failureOf(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(99))).all());
            assertTrue(beyond instanceof org.apache.kafka.common.errors.OffsetOutOfRangeException, "delete beyond HW: " + beyond);
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(120)
    void describeClusterAndLogDirs() throws Exception {
        String topic = Compat.unique("admin-logdirs");
        try (Admin admin = Compat.admin()) {
            DescribeClusterResult cluster = admin.describeCluster();
            String clusterId = Compat.get(cluster.clusterId());
            assertNotNull(clusterId);
            assertFalse(clusterId.isEmpty());
            Collection<Node> nodes = Compat.get(cluster.nodes());
            assertEquals(Compat.BROKERS, nodes.size(), "every broker of the cluster: " + nodes);
            Set<Integer> ids = nodes.stream().map(Node::id).collect(Collectors.toSet());
            assertEquals(Compat.BROKERS, ids.size(), "distinct node ids: " + nodes);
            Node controller = Compat.get(cluster.controller());
            assertNotNull(controller);
            assertTrue(ids.contains(controller.id()), "controller " + controller + " is one of " + nodes);
            long advertisingBootstrap = nodes.stream().filter(n -> n.port() == Compat.bootstrapPort()).count();
            assertEquals(1, advertisingBootstrap, "one node advertises the bootstrap port " + Compat.bootstrapPort() + ": " + nodes);

            Compat.createTopic(admin, topic, 2);
            try (var p = Compat.producer(Map.of())) {
                p.send(new ProducerRecord<>(topic, 0, "k", "x".repeat(1000))).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
            }
            TopicPartition tp0 = new TopicPartition(topic, 0);
            TopicPartition tp1 = new TopicPartition(topic, 1);
            // Replication factor 1: each partition lives on its leader only, and
            // DescribeLogDirs (sent to every broker) shows it there and nowhere else.
            var parts = Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions();
            int leader0 = parts.get(0).leader().id();
            int leader1 = parts.get(1).leader().id();
            Compat.waitUntil("describeLogDirs shows each partition on its leader only, with its size", () -> {
                try {
                    Map<Integer, Map<String, LogDirDescription>> dirs = Compat.get(admin.describeLogDirs(ids).allDescriptions());
                    if (!dirs.keySet().equals(ids)) {
                        return false;
                    }
                    Map<TopicPartition, Integer> holders = new java.util.HashMap<>();
                    boolean sized0 = false;
                    boolean sized1 = false;
                    for (var byNode : dirs.entrySet()) {
                        for (LogDirDescription d : byNode.getValue().values()) {
                            if (d.error() != null) {
                                return false;
                            }
                            ReplicaInfo r0 = d.replicaInfos().get(tp0);
                            ReplicaInfo r1 = d.replicaInfos().get(tp1);
                            if (r0 != null) {
                                holders.merge(tp0, 1, Integer::sum);
                                sized0 |= byNode.getKey() == leader0 && r0.size() > 1000 && !r0.isFuture();
                            }
                            if (r1 != null) {
                                holders.merge(tp1, 1, Integer::sum);
                                sized1 |= byNode.getKey() == leader1 && r1.size() == 0 && !r1.isFuture();
                            }
                        }
                    }
                    return sized0 && sized1 && holders.equals(Map.of(tp0, 1, tp1, 1));
                } catch (Exception e) {
                    return false;
                }
            });
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(120)
    void describeProducersOfIdempotentProducer() throws Exception {
        String topic = Compat.unique("admin-producers");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            var before = Compat.get(admin.describeProducers(List.of(tp)).partitionResult(tp));
            assertTrue(before.activeProducers().isEmpty(), "no producers yet: " + before.activeProducers());
            try (var p = Compat.producer(Map.of(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true"))) {
                for (int i = 0; i < 3; i++) {
                    p.send(new ProducerRecord<>(topic, 0, "k", "v" + i)).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
                }
            }
            var after = Compat.get(admin.describeProducers(List.of(tp)).partitionResult(tp));
            assertEquals(1, after.activeProducers().size(), "one producer: " + after.activeProducers());
            ProducerState s = after.activeProducers().get(0);
            assertTrue(s.producerId() >= 0);
            assertTrue(s.producerEpoch() >= 0);
            assertEquals(2, s.lastSequence());
            assertTrue(s.lastTimestamp() > 0);
            assertFalse(s.currentTransactionStartOffset().isPresent());
            admin.deleteTopics(List.of(topic));
        }
    }

    /** A transactional producer that wrote into partition 0 of a fresh topic (after one plain record) and never ends its transaction. */
    private static final class Hanging implements AutoCloseable {
        final String topic = Compat.unique("admin-hanging");
        final String txnId = Compat.unique("hanging-id");
        final TopicPartition tp = new TopicPartition(topic, 0);
        final KafkaProducer<String, String> producer;

        Hanging(Admin admin) throws Exception {
            Compat.createTopic(admin, topic, 1);
            try (var plain = Compat.producer(Map.of())) {
                plain.send(new ProducerRecord<>(topic, 0, "k", "before")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
            }
            producer = Compat.producer(Map.of(
                    ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId,
                    ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "120000"));
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, 0, "k", "in-hanging-txn")).get(Compat.TIMEOUT_S, TimeUnit.SECONDS);
        }

        ProducerState state(Admin admin) throws Exception {
            List<ProducerState> states = Compat.get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
            return states.stream().filter(s -> s.currentTransactionStartOffset().isPresent()).findFirst()
                    .orElseThrow(() -> new AssertionError("describeProducers shows no open transaction on " + tp + ": " + states));
        }

        @Override
        public void close() {
            producer.close(Duration.ZERO);
        }
    }

    @Test
    @Timeout(180)
    void listAndDescribeHangingTransaction() throws Exception {
        try (Admin admin = Compat.admin(); Hanging h = new Hanging(admin)) {
            Collection<TransactionListing> listings = Compat.get(admin.listTransactions().all());
            TransactionListing mine = listings.stream().filter(l -> l.transactionalId().equals(h.txnId)).findFirst()
                    .orElseThrow(() -> new AssertionError("listTransactions lacks " + h.txnId + ": " + listings));
            assertEquals(TransactionState.ONGOING, mine.state());
            assertTrue(mine.producerId() >= 0);

            TransactionDescription td = Compat.get(admin.describeTransactions(List.of(h.txnId)).description(h.txnId));
            assertEquals(TransactionState.ONGOING, td.state());
            assertEquals(mine.producerId(), td.producerId());
            assertEquals(120000, td.transactionTimeoutMs());
            assertEquals(Set.of(h.tp), td.topicPartitions());
            assertTrue(td.transactionStartTimeMs().isPresent());

            ProducerState ps = h.state(admin);
            assertEquals(td.producerId(), ps.producerId());
            assertEquals(java.util.OptionalLong.of(1), ps.currentTransactionStartOffset(), "the open transaction starts at offset 1");

            // read_committed cannot get past the open transaction (LSO = 1)
            try (KafkaConsumer<String, String> rc = Compat.consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
                assertEquals(Map.of(h.tp, 1L), rc.endOffsets(List.of(h.tp)), "LSO with the transaction open");
            }
            admin.deleteTopics(List.of(h.topic));
        }
    }

    @Test
    @Timeout(180)
    void abortHangingTransactionWithAdmin() throws Exception {
        try (Admin admin = Compat.admin(); Hanging h = new Hanging(admin)) {
            ProducerState ps = h.state(admin);
            // As kafka-transactions.sh abort does: the coordinator epoch, or 0 when none
            // is known yet (no marker written for this producer). Sent as WriteTxnMarkers.
            Compat.get(admin.abortTransaction(new AbortTransactionSpec(h.tp, ps.producerId(), (short) ps.producerEpoch(),
                    ps.coordinatorEpoch().orElse(0))).all());

            Compat.waitUntil("the aborted transaction is gone from describeProducers", () -> {
                try {
                    return Compat.get(admin.describeProducers(List.of(h.tp)).partitionResult(h.tp)).activeProducers().stream()
                            .noneMatch(s -> s.currentTransactionStartOffset().isPresent());
                } catch (Exception e) {
                    return false;
                }
            });
            try (KafkaConsumer<String, String> rc = Compat.consumer(null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
                // before(0) + txn record(1) + abort marker(2): the LSO moves to the end
                assertEquals(Map.of(h.tp, 3L), rc.endOffsets(List.of(h.tp)), "LSO after the abort");
                rc.assign(List.of(h.tp));
                rc.seekToBeginning(List.of(h.tp));
                List<ConsumerRecord<String, String>> got = Compat.pollAtLeast(rc, 1);
                for (var r : rc.poll(Duration.ofMillis(500))) {
                    got.add(r);
                }
                assertEquals(List.of("before"), got.stream().map(ConsumerRecord::value).collect(Collectors.toList()),
                        "the aborted record is invisible to read_committed");
            }
            admin.deleteTopics(List.of(h.topic));
        }
    }

    // ---- APIs a small broker may not offer: the client must get a clean error (or Kafka's answer), not hang ----

    @Test
    @Timeout(60)
    void describeAclsWithoutAuthorizerIsSecurityDisabled() throws Exception {
        try (Admin admin = Compat.admin()) {
            Throwable t = failureOf(admin.describeAcls(AclBindingFilter.ANY).values());
            assertTrue(t instanceof SecurityDisabledException, "describeAcls: " + t);
        }
    }

    @Test
    @Timeout(60)
    void createAclsWithoutAuthorizerIsSecurityDisabled() throws Exception {
        try (Admin admin = Compat.admin()) {
            AclBinding binding = new AclBinding(new ResourcePattern(ResourceType.TOPIC, Compat.unique("acl"), PatternType.LITERAL),
                    new AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW));
            Throwable t = failureOf(admin.createAcls(List.of(binding)).all());
            assertTrue(t instanceof SecurityDisabledException, "createAcls: " + t);
        }
    }

    @Test
    @Timeout(60)
    void electPreferredLeaderIsNotNeeded() throws Exception {
        String topic = Compat.unique("admin-elect");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            Map<TopicPartition, Optional<Throwable>> r = Compat.get(admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions());
            assertTrue(r.containsKey(tp), "result for " + tp + ": " + r);
            assertTrue(r.get(tp).isPresent() && r.get(tp).get() instanceof ElectionNotNeededException,
                    "single replica already the preferred leader: " + r);
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(60)
    void describeMetadataQuorum() throws Exception {
        try (Admin admin = Compat.admin()) {
            Set<Integer> brokers = Compat.get(admin.describeCluster().nodes()).stream().map(Node::id).collect(Collectors.toSet());
            assertEquals(Compat.BROKERS, brokers.size(), "every broker of the cluster: " + brokers);
            var q = Compat.get(admin.describeMetadataQuorum().quorumInfo());
            Set<Integer> voters = q.voters().stream().map(v -> v.replicaId()).collect(Collectors.toSet());
            assertEquals(q.voters().size(), voters.size(), "distinct voters: " + q.voters());
            // Combined nodes: every broker is also a voter (one node: it alone).
            assertEquals(brokers, voters, "the voters are the cluster's nodes");
            assertTrue(voters.contains(q.leaderId()), "a voter leads the metadata quorum: " + q.leaderId() + " of " + voters);
        }
    }

    @Test
    @Timeout(60)
    void describeUserScramCredentialsOfAnUnknownUser() throws Exception {
        // Other suites may store credentials on a shared broker: ask for a
        // user nobody made, which Kafka answers with RESOURCE_NOT_FOUND.
        String user = Compat.unique("scram-nobody");
        try (Admin admin = Compat.admin()) {
            Compat.get(admin.describeUserScramCredentials().all());
            Throwable t = failureOf(admin.describeUserScramCredentials(List.of(user)).description(user));
            assertTrue(t instanceof org.apache.kafka.common.errors.ResourceNotFoundException, "unknown user: " + t);
        }
    }

    @Test
    @Timeout(60)
    void alterPartitionReassignmentsToTheSameReplica() throws Exception {
        String topic = Compat.unique("admin-reassign");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin admin = Compat.admin()) {
            Compat.createTopic(admin, topic, 1);
            // The broker that holds the partition now (in a cluster, any of them).
            List<Node> replicas = Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic)
                    .partitions().get(0).replicas();
            assertEquals(1, replicas.size(), "replication factor 1: " + replicas);
            int node = replicas.get(0).id();
            Compat.get(admin.alterPartitionReassignments(Map.of(tp,
                    Optional.of(new org.apache.kafka.clients.admin.NewPartitionReassignment(List.of(node))))).all());
            var ongoing = Compat.get(admin.listPartitionReassignments(Set.of(tp)).reassignments());
            assertTrue(ongoing.isEmpty(), "nothing left to move: " + ongoing);
            List<Node> after = Compat.get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic)
                    .partitions().get(0).replicas();
            assertEquals(List.of(node), after.stream().map(Node::id).collect(Collectors.toList()), "the replica stays");
            admin.deleteTopics(List.of(topic));
        }
    }

    @Test
    @Timeout(60)
    void apisKaskadeDoesNotOfferFailCleanly() throws Exception {
        // Client quotas and delegation tokens: Kafka answers them (quotas: none;
        // tokens: disabled without SASL); Kaskade does not offer the APIs, and
        // the client must say so at once rather than hang or disconnect.
        try (Admin admin = Compat.admin()) {
            Throwable quotas = failureOf(admin.describeClientQuotas(
                    org.apache.kafka.common.quota.ClientQuotaFilter.all()).entities());
            assertTrue(quotas == null || quotas instanceof org.apache.kafka.common.errors.UnsupportedVersionException,
                    "describeClientQuotas: " + quotas);
            Throwable tokens = failureOf(admin.describeDelegationToken().delegationTokens());
            assertTrue(tokens instanceof org.apache.kafka.common.errors.DelegationTokenDisabledException
                    || tokens instanceof org.apache.kafka.common.errors.UnsupportedByAuthenticationException
                    || tokens instanceof org.apache.kafka.common.errors.UnsupportedVersionException,
                    "describeDelegationToken: " + tokens);
        }
    }
}
