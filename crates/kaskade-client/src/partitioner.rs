//! Kafka's default partitioning: keyed records go to
//! `toPositive(murmur2(key)) % numPartitions` (so the same key lands on
//! the same partition as with the Java client and librdkafka's
//! `murmur2_random`); unkeyed records stick to one partition until about a
//! batch worth of bytes went there, then move on (KIP-794).

/// Kafka's `Utils.murmur2`: MurmurHash2, seed 0x9747b28c, little-endian
/// words, as a signed 32-bit int.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through from case 3 to 2 to 1.
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    assert!(num_partitions > 0);
    to_positive(murmur2(key)) % num_partitions
}

/// Sticky partitioning for records without a key.
#[derive(Debug)]
pub struct StickyPartitioner {
    num_partitions: i32,
    batch_size: usize,
    current: i32,
    bytes_in_current: usize,
    rng: u64,
}

impl StickyPartitioner {
    pub fn new(num_partitions: i32, batch_size: usize) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((std::process::id() as u64) << 32)
            | 1;
        Self::with_seed(num_partitions, batch_size, seed)
    }

    pub fn with_seed(num_partitions: i32, batch_size: usize, seed: u64) -> Self {
        assert!(num_partitions > 0);
        let mut p = StickyPartitioner {
            num_partitions,
            batch_size: batch_size.max(1),
            current: 0,
            bytes_in_current: 0,
            rng: seed | 1,
        };
        p.current = p.random_partition();
        p
    }

    fn random_partition(&mut self) -> i32 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % self.num_partitions as u64) as i32
    }

    /// The partition for the next unkeyed record of `size` bytes.
    pub fn next(&mut self, size: usize) -> i32 {
        if self.bytes_in_current >= self.batch_size {
            let mut next = self.random_partition();
            if self.num_partitions > 1 && next == self.current {
                next = (next + 1) % self.num_partitions;
            }
            self.current = next;
            self.bytes_in_current = 0;
        }
        self.bytes_in_current += size;
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_kafka_utils_test() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    /// More values of Kafka's `Utils.murmur2` (quoted by Akka's Kafka-
    /// compatible sharding tests), covering every tail length 0..=3.
    #[test]
    fn murmur2_more_vectors() {
        let cases: &[(&str, i32)] = &[
            ("1", -1993445489),
            ("12", 126087238),
            ("123", -267702483),
            ("1234", -1614185708),
            ("12345", -1188365604),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input.as_bytes()), *want, "{input:?}");
        }
    }

    #[test]
    fn keyed_partition_is_to_positive_mod() {
        // murmur2("foobar") = -790332482 -> toPositive = 1357151166
        assert_eq!(to_positive(-790332482), 1357151166);
        assert_eq!(partition_for_key(b"foobar", 10), 1357151166 % 10);
        assert_eq!(partition_for_key(b"foobar", 1), 0);
        assert_eq!(to_positive(i32::MIN), 0);
        for n in 1..20 {
            let p = partition_for_key(b"some key", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    fn sticky_switches_after_a_batch() {
        let mut s = StickyPartitioner::with_seed(4, 100, 42);
        let first = s.next(60);
        assert_eq!(s.next(60), first, "sticks while under batch size");
        let third = s.next(10);
        assert_ne!(third, first, "moves on once a batch worth went there");
        let mut single = StickyPartitioner::with_seed(1, 1, 7);
        for _ in 0..5 {
            assert_eq!(single.next(10), 0);
        }
    }
}
