"""A minimal Kafka wire client for the cluster benchmarks: Metadata v4,
CreateTopics v2 and DescribeQuorum v0 on one connection to one node.

Why not librdkafka: the benchmarks must ask *one given node* for its
Metadata (to time when each broker has applied a change) and send
CreateTopics to a chosen node; librdkafka picks brokers itself.
Metadata and CreateTopics are non-flexible versions (request header v1,
response header v0); DescribeQuorum has only flexible ones (header v2,
response header v1, compact arrays and tagged fields). DescribeQuorum names
the active controller (the metadata quorum's leader) on Kaskade and Kafka
alike; Metadata's controller id does not on Kafka (a random live broker in
KRaft mode).
Metadata v4 carries allow_auto_topic_creation=false, so asking a node about
a topic it does not have yet never creates it.
"""
import socket
import struct

NONE = 0
TOPIC_ALREADY_EXISTS = 36


class WireError(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d, self.at = data, 0

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.d[self.at]
            self.at += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            n = self.uvarint()
            self.at += n

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.at)
        self.at += struct.calcsize(fmt)
        return v[0]

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.d[self.at:self.at + n].decode()
        self.at += n
        return s

    def array(self, item):
        n = self.i32()
        return [] if n < 0 else [item() for _ in range(n)]


def enc_str(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def enc_array(items, enc):
    if items is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(items)) + b"".join(enc(i) for i in items)


class Conn:
    """One TCP connection to one node; calls are sequential."""

    def __init__(self, addr, timeout_s=30.0):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise WireError(f"{self.addr} closed the connection")
            buf += chunk
        return bytes(buf)

    def call(self, api_key, version, body, flexible=False):
        self.corr += 1
        header = struct.pack(">hhi", api_key, version, self.corr) + enc_str("kaskade-bench")
        if flexible:
            header += b"\x00"  # no tagged fields
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        corr = struct.unpack_from(">i", data)[0]
        if corr != self.corr:
            raise WireError(f"{self.addr}: correlation id {corr}, expected {self.corr}")
        r = Reader(data[4:])
        if flexible:
            r.skip_tags()
        return r

    def quorum_leader(self):
        """The leader of __cluster_metadata-0 from DescribeQuorum v0 (-1: none known)."""
        name = b"__cluster_metadata"
        # topics: 1 (compact: 2), name, partitions: 1 (2), index 0, tags, tags; top-level tags.
        body = b"\x02" + bytes([len(name) + 1]) + name + b"\x02" + struct.pack(">i", 0) + b"\x00\x00\x00"
        r = self.call(55, 0, body, flexible=True)
        err = r.i16()
        if err != NONE:
            raise WireError(f"{self.addr}: DescribeQuorum error {err}")
        if r.uvarint() < 2:
            raise WireError(f"{self.addr}: DescribeQuorum answered no topic")
        n = r.uvarint()  # topic name (compact: length + 1)
        r.at += n - 1
        if r.uvarint() < 2:
            raise WireError(f"{self.addr}: DescribeQuorum answered no partition")
        r.i32()
        err = r.i16()
        if err != NONE:
            raise WireError(f"{self.addr}: DescribeQuorum partition error {err}")
        return r.i32()

    def metadata(self, topics):
        """{'controller': id, 'brokers': [ids], 'topics': {name: (error, [(pid, err, leader, replicas, isr)])}}"""
        body = enc_array(topics, enc_str) + struct.pack(">b", 0)
        r = self.call(3, 4, body)
        r.i32()  # throttle

        def broker():
            node = r.i32()
            r.string()
            r.i32()
            r.string()
            return node

        brokers = r.array(broker)
        r.string()  # cluster id
        controller = r.i32()

        def partition():
            err = r.i16()
            pid = r.i32()
            leader = r.i32()
            replicas = r.array(r.i32)
            isr = r.array(r.i32)
            return (pid, err, leader, replicas, isr)

        def topic():
            err = r.i16()
            name = r.string()
            r.i8()
            return name, (err, r.array(partition))

        return {"controller": controller, "brokers": brokers, "topics": dict(r.array(topic))}

    def create_topics(self, topics, timeout_ms=60000):
        """topics: [(name, partitions, rf, {config: value})] -> {name: (error, message)}"""

        def topic(t):
            name, parts, rf, configs = t
            return (enc_str(name) + struct.pack(">ih", parts, rf) + enc_array([], None)
                    + enc_array(sorted(configs.items()), lambda kv: enc_str(kv[0]) + enc_str(kv[1])))

        body = enc_array(topics, topic) + struct.pack(">ib", timeout_ms, 0)
        r = self.call(19, 2, body)
        r.i32()

        def result():
            name = r.string()
            err = r.i16()
            return name, (err, r.string())

        return dict(r.array(result))


def all_leaders(meta, topics, partitions):
    """Every topic in `topics` is listed with `partitions` partitions, each
    with a leader and no error."""
    for t in topics:
        entry = meta["topics"].get(t)
        if entry is None or entry[0] != NONE or len(entry[1]) != partitions:
            return False
        if any(err != NONE or leader < 0 for (_, err, leader, _, _) in entry[1]):
            return False
    return True
