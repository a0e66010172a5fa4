"""Admin answers that Apache Kafka gives on a single unsecured node, through
confluent-kafka (librdkafka's admin API), so tools and UIs degrade cleanly:

- ACL APIs answer SECURITY_DISABLED (no authorizer configured);
- authorized operations, when asked for, list every operation of the
  resource type (topic: 8, cluster: 7, group: 5);
- ElectLeaders answers ELECTION_NOT_NEEDED for a partition led by its
  preferred replica, UNKNOWN_TOPIC_OR_PARTITION for one that does not exist;
- SCRAM credentials are stored, described and deleted by Kafka's rules;
- CreateTopics' per-topic error is null when there is none.

Every test passes against Apache Kafka 4.x (tests/compat/compare.sh).
"""

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from conftest import BOOTSTRAP, TIMEOUT_S, unique_topic, wait_until


@pytest.fixture(scope="module")
def admin():
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "socket.timeout.ms": 10000})


@pytest.fixture(scope="module")
def topic(admin):
    name = unique_topic("parity")
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result(TIMEOUT_S)
    wait_until(lambda: name in admin.list_topics(timeout=10).topics, f"{name} in metadata")
    yield name
    admin.delete_topics([name])[name].result(TIMEOUT_S)


def _code(exc_info) -> int:
    err = exc_info.value.args[0]
    return err.code()


def test_describe_acls_answers_without_an_authorizer(admin):
    # Kafka answers SECURITY_DISABLED, which librdkafka turns into an empty
    # list (a closed connection would be a transport error instead).
    flt = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    assert admin.describe_acls(flt).result(TIMEOUT_S) == []


def test_create_and_delete_acls_are_security_disabled(admin):
    binding = AclBinding(
        ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    with pytest.raises(KafkaException) as e:
        admin.create_acls([binding])[binding].result(TIMEOUT_S)
    assert _code(e) == KafkaError.SECURITY_DISABLED
    flt = AclBindingFilter(
        ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    with pytest.raises(KafkaException) as e:
        admin.delete_acls([flt])[flt].result(TIMEOUT_S)
    assert _code(e) == KafkaError.SECURITY_DISABLED


def test_cluster_authorized_operations(admin):
    desc = admin.describe_cluster(include_authorized_operations=True).result(TIMEOUT_S)
    ops = {op.name for op in desc.authorized_operations}
    assert ops == {"CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
                   "IDEMPOTENT_WRITE"}
    plain = admin.describe_cluster().result(TIMEOUT_S)
    assert not plain.authorized_operations


def test_topic_authorized_operations(admin, topic):
    desc = admin.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(TIMEOUT_S)
    ops = {op.name for op in desc.authorized_operations}
    assert ops == {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}


def test_group_authorized_operations(admin, topic):
    from confluent_kafka import Consumer

    group = unique_topic("parity-group")
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        wait_until(lambda: (c.poll(0.2), c.assignment())[1], "an assignment")
        desc = admin.describe_consumer_groups([group], include_authorized_operations=True)[group].result(TIMEOUT_S)
        ops = {op.name for op in desc.authorized_operations}
        assert ops == {"READ", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    finally:
        c.close()


def test_elect_leaders_not_needed_on_preferred_leader(admin, topic):
    result = admin.elect_leaders(
        ElectionType.PREFERRED, [TopicPartition(topic, 0), TopicPartition(topic, 7)]
    ).result(TIMEOUT_S)
    by_partition = {tp.partition: err for tp, err in result.items()}
    assert by_partition[0] is not None and by_partition[0].code() == KafkaError.ELECTION_NOT_NEEDED
    assert by_partition[7] is not None and by_partition[7].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_scram_credentials_follow_kafkas_rules(admin):
    user = unique_topic("scram-user")
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    upsert = UserScramCredentialUpsertion(user, info, b"secret-password", b"some-salt-bytes")
    admin.alter_user_scram_credentials([upsert])[user].result(TIMEOUT_S)

    def describe():
        try:
            return admin.describe_user_scram_credentials([user])[user].result(TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.RESOURCE_NOT_FOUND:
                return None
            raise

    # Kafka's brokers learn the controller's change asynchronously.
    described = wait_until(describe, f"{user}'s credential to be visible")
    assert [(i.mechanism, i.iterations) for i in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 8192)
    ]
    # Too few iterations is refused.
    weak = UserScramCredentialUpsertion(
        user + "-weak", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"pw", b"salt"
    )
    with pytest.raises(KafkaException) as e:
        admin.alter_user_scram_credentials([weak])[user + "-weak"].result(TIMEOUT_S)
    assert _code(e) == KafkaError.UNACCEPTABLE_CREDENTIAL
    # Deleting removes it; deleting again finds nothing.
    deletion = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)
    admin.alter_user_scram_credentials([deletion])[user].result(TIMEOUT_S)
    wait_until(lambda: describe() is None, f"{user}'s credential to be gone")
    with pytest.raises(KafkaException) as e:
        admin.alter_user_scram_credentials([deletion])[user].result(TIMEOUT_S)
    assert _code(e) == KafkaError.RESOURCE_NOT_FOUND


def test_keyless_records_on_a_compacted_topic_are_named_by_index(admin):
    """librdkafka fails exactly the refused records with INVALID_RECORD and
    the rest of their batch with _INVALID_DIFFERENT_RECORD (record_errors)."""
    from confluent_kafka import Producer

    name = unique_topic("parity-compacted")
    admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1, config={"cleanup.policy": "compact"})]
    )[name].result(TIMEOUT_S)
    wait_until(lambda: name in admin.list_topics(timeout=10).topics, f"{name} in metadata")
    try:
        # One batch of 100 records (a long linger, no retries), 10 of them keyless.
        p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 1000, "batch.num.messages": 1000,
                      "enable.idempotence": False, "retries": 0, "acks": "all"})
        results = {}

        def report(err, msg, i):
            results[i] = err.code() if err else None

        for i in range(100):
            key = None if i % 10 == 3 else f"k{i}"
            p.produce(name, key=key, value=f"v{i}", on_delivery=lambda e, m, i=i: report(e, m, i))
        assert p.flush(TIMEOUT_S) == 0
        keyless = {i for i in range(100) if i % 10 == 3}
        assert {i for i, c in results.items() if c == KafkaError.INVALID_RECORD} == keyless
        assert {i for i, c in results.items() if c == KafkaError._INVALID_DIFFERENT_RECORD} == set(range(100)) - keyless
    finally:
        admin.delete_topics([name])[name].result(TIMEOUT_S)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", "uncompressed"])
def test_topic_compression_type_is_accepted_and_records_read_back(admin, codec):
    """librdkafka's admin test creates topics with compression.type=lz4; the
    broker recompresses batches to the topic's codec (checked on disk by the
    Rust test rdkafka_recompression) and every record reads back."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import ConfigResource

    name = unique_topic(f"parity-{codec}")
    admin.create_topics(
        [NewTopic(name, num_partitions=1, replication_factor=1, config={"compression.type": codec})]
    )[name].result(TIMEOUT_S)
    try:
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([res])[res].result(TIMEOUT_S)
        assert configs["compression.type"].value == codec
        p = Producer({"bootstrap.servers": BOOTSTRAP, "compression.codec": "gzip" if codec != "gzip" else "lz4"})
        for i in range(50):
            p.produce(name, key=f"k{i}", value=f"{codec}-{i}-" + "x" * 100)
        assert p.flush(TIMEOUT_S) == 0
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique_topic("parity-codec"),
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(name, 0, 0)])
            got = []
            wait_until(lambda: (got.extend(m.value().decode() for m in c.consume(50, 0.5) if not m.error()),
                                len(got) >= 50)[1], "50 records")
            assert got == [f"{codec}-{i}-" + "x" * 100 for i in range(50)]
        finally:
            c.close()
    finally:
        admin.delete_topics([name])[name].result(TIMEOUT_S)


def _broker_resource(admin):
    from confluent_kafka.admin import ConfigResource

    node = admin.describe_cluster().result(TIMEOUT_S).nodes[0].id
    return ConfigResource(ConfigResource.Type.BROKER, str(node))


def test_broker_configs_report_dynamic_keys_as_writable(admin):
    """DescribeConfigs on the broker: dynamically updatable keys are not
    read-only (kafka-python's broker-resource test), static ones are.
    Apache Kafka 4.4 in KRaft mode treats advertised.listeners as static."""
    res = _broker_resource(admin)
    configs = admin.describe_configs([res])[res].result(TIMEOUT_S)
    for key in ("log.retention.ms", "message.max.bytes", "log.cleaner.threads"):
        assert key in configs and not configs[key].is_read_only, key
    for key in ("num.partitions", "advertised.listeners"):
        assert key in configs and configs[key].is_read_only, key


def test_static_broker_keys_cannot_change_at_run_time(admin):
    """Kafka's answer to a dynamic change of a static key."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    res = _broker_resource(admin)
    host, port = BOOTSTRAP.rsplit(":", 1)
    entry = ConfigEntry("advertised.listeners", f"PLAINTEXT://localhost:{port}",
                        incremental_operation=AlterConfigOpType.SET)
    r = ConfigResource(res.restype, res.name, incremental_configs=[entry])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([r])[r].result(TIMEOUT_S)
    assert _code(e) == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically: [advertised.listeners]" in str(e.value)
