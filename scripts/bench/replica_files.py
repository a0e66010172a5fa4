"""One replica's copy of a partition read straight from a node's data
directory, batch by batch, as crates/kaskade/tests/process/replicas.rs reads
it: two replicas are the same when their batches (offsets, leader epochs,
bytes) are the same, whatever their segment files and indexes look like.
A batch cut short at the end of a file (a write in progress) is left out.
"""
import hashlib
import os
import struct

HEADER = 61  # base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2, last offset delta 4, ...


def partition_dir(root, topic, partition):
    wanted = f"{topic}-{partition}"
    for d, subdirs, _ in os.walk(root):
        if wanted in subdirs:
            return os.path.join(d, wanted)
    return None


def logs(root, topic, partition):
    d = partition_dir(root, topic, partition)
    if d is None:
        return []
    try:
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))
    except OSError:
        return []


def batches(root, topic, partition, with_bytes):
    """(base offset, last offset, bytes or None, length) of every whole batch, in order."""
    for path in logs(root, topic, partition):
        try:
            f = open(path, "rb")
        except OSError:
            continue
        with f:
            size = os.fstat(f.fileno()).st_size
            at = 0
            while at + HEADER <= size:
                f.seek(at)
                head = f.read(HEADER)
                if len(head) < HEADER:
                    break
                base, length = struct.unpack_from(">qi", head)
                delta = struct.unpack_from(">i", head, 23)[0]
                end = at + 12 + length
                if length < 49 or end > size:
                    break
                body = None
                if with_bytes:
                    f.seek(at)
                    body = f.read(end - at)
                yield base, base + delta, body, end - at
                at = end


def log_end(root, topic, partition):
    end = 0
    for _, last, _, _ in batches(root, topic, partition, False):
        end = last + 1
    return end


def digest(root, topic, partition):
    h = hashlib.sha256()
    for base, _, body, _ in batches(root, topic, partition, True):
        h.update(struct.pack(">q", base))
        h.update(body)
    return h.hexdigest()


def size(root, topic, partition):
    """Bytes of whole batches (record batches as stored, headers included)."""
    return sum(n for _, _, _, n in batches(root, topic, partition, False))
