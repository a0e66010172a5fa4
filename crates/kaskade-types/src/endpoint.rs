//! Where clients reach a node: the host and port it advertises (Kafka's
//! `Endpoint` of a listener, as Metadata, FindCoordinator and
//! DescribeCluster report it).

use std::fmt;

/// A host and port clients connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    /// The wire's int32 port.
    pub port: i32,
}

impl Endpoint {
    pub fn new(host: impl Into<String>, port: i32) -> Self {
        Endpoint { host: host.into(), port }
    }
}

impl From<(String, i32)> for Endpoint {
    fn from((host, port): (String, i32)) -> Self {
        Endpoint { host, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_host_and_port() {
        let e = Endpoint::from(("broker-1".to_string(), 9092));
        assert_eq!(e, Endpoint::new("broker-1", 9092));
        assert_eq!(e.to_string(), "broker-1:9092");
    }
}
