//! Topic-partitions, by name and by topic id.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// A topic partition, named as Kafka names its directory: `<topic>-<partition>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }

    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name; `None` for anything else
    /// (including directories scheduled for deletion).
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, part) = name.rsplit_once('-')?;
        if topic.is_empty() {
            return None;
        }
        let partition: i32 = part.parse().ok()?;
        if partition < 0 {
            return None;
        }
        Some(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic partition with its topic id: the id tells a recreated topic of
/// the same name from the old one (Fetch v13+, KIP-516).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopicIdPartition {
    pub topic_id: Uuid,
    pub partition: TopicPartition,
}

impl fmt::Display for TopicIdPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.topic_id, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::new("orders-eu", 3);
        assert_eq!(tp.dir_name(), "orders-eu-3");
        assert_eq!(TopicPartition::parse_dir_name("orders-eu-3"), Some(tp));
        assert_eq!(TopicPartition::parse_dir_name("orders-x"), None);
        assert_eq!(TopicPartition::parse_dir_name("-3"), None);
    }
}
