//! The transaction coordinator's marker writer on a cluster: a marker for
//! a partition this node leads goes to its log (`LocalMarkers`), one for a
//! partition another broker leads goes to that broker in WriteTxnMarkers
//! (API 27), as Kafka's `TransactionMarkerChannelManager` sends them.
//!
//! Invariants: each call places every partition on the current metadata
//! image (so a retry after a leadership change goes to the new leader);
//! the markers for one broker travel in one request; every partition asked
//! gets exactly one outcome, in the order asked; a remote outcome is the
//! leader's own answer, which it gives once the marker is durable there
//! (`api::write_txn_markers`). What is retried and what is final is
//! `MarkerError::disposition`'s decision, not this writer's.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    ProducerId as WireProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use kaskade_log::txn::Marker;
use kaskade_types::{NodeId, TopicPartition};

use super::{MarkerError, MarkerWriter, MarkersWritten, TxnMarker};
use crate::inter_broker::InterBroker;
use crate::topic::TopicManager;

/// Where a partition's marker goes, as the metadata image says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// This node leads it.
    Here,
    /// Another broker leads it.
    Leader(NodeId),
    /// It exists but has no leader now (its leader is offline).
    NoLeader,
    /// It does not exist (deleted since it joined the transaction).
    Unknown,
}

/// Places a partition on the current image.
pub type Placer = Arc<dyn Fn(&TopicPartition) -> Placement + Send + Sync>;

/// Sends a WriteTxnMarkers request to a broker and returns its answer, or
/// why there is none (no connection, a timeout, a broken connection).
pub trait MarkerChannel: Send + Sync + 'static {
    fn send(
        &self,
        node: NodeId,
        request: WriteTxnMarkersRequest,
    ) -> BoxFuture<'static, Result<WriteTxnMarkersResponse, String>>;
}

impl MarkerChannel for Arc<InterBroker> {
    fn send(
        &self,
        node: NodeId,
        request: WriteTxnMarkersRequest,
    ) -> BoxFuture<'static, Result<WriteTxnMarkersResponse, String>> {
        let peers = self.clone();
        Box::pin(async move {
            let conn = peers.connection(node).await.map_err(|e| e.to_string())?;
            let version = conn.version::<WriteTxnMarkersRequest>().map_err(|e| e.to_string())?;
            conn.send(&request, version).await.map_err(|e| {
                // The next attempt connects afresh.
                peers.disconnect(node, &conn);
                e.to_string()
            })
        })
    }
}

/// Markers to this node's logs and to other brokers.
pub struct ClusterMarkers {
    local: Arc<dyn MarkerWriter>,
    place: Placer,
    remote: Arc<dyn MarkerChannel>,
}

impl ClusterMarkers {
    pub fn new(local: Arc<dyn MarkerWriter>, place: Placer, remote: Arc<dyn MarkerChannel>) -> Self {
        ClusterMarkers { local, place, remote }
    }

    /// The writer of the broker running on `topics`: placement from its
    /// image, other brokers reached through `peers`.
    pub fn for_broker(local: Arc<dyn MarkerWriter>, topics: Arc<TopicManager>, peers: Arc<InterBroker>) -> Self {
        let place: Placer = Arc::new(move |tp: &TopicPartition| place_on(&topics.image(), topics.node_id(), tp));
        ClusterMarkers::new(local, place, Arc::new(peers))
    }
}

/// Where `tp`'s marker goes on `image`, for node `me`.
pub fn place_on(image: &kaskade_meta::Image, me: NodeId, tp: &TopicPartition) -> Placement {
    let partition =
        image.topic(&tp.topic).and_then(|t| usize::try_from(tp.partition).ok().and_then(|i| t.partitions.get(i)));
    match partition.map(|p| p.leader) {
        None => Placement::Unknown,
        Some(None) => Placement::NoLeader,
        Some(Some(leader)) if leader == me => Placement::Here,
        Some(Some(leader)) => Placement::Leader(leader),
    }
}

impl MarkerWriter for ClusterMarkers {
    fn write(&self, partitions: &[TopicPartition], marker: TxnMarker) -> MarkersWritten {
        let mut outcomes: Vec<Option<Result<(), MarkerError>>> = vec![None; partitions.len()];
        let mut here = Vec::new();
        let mut by_leader: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for (i, tp) in partitions.iter().enumerate() {
            match (self.place)(tp) {
                Placement::Here => here.push(i),
                Placement::Leader(node) => by_leader.entry(node).or_default().push(i),
                // Kafka queues these until a leader is known; the retry
                // places them again on a newer image.
                Placement::NoLeader => {
                    outcomes[i] =
                        Some(Err(MarkerError::Failed(ResponseError::LeaderNotAvailable, format!("{tp} has no leader"))))
                }
                Placement::Unknown => outcomes[i] = Some(Err(MarkerError::UnknownPartition)),
            }
        }
        let local_tps: Vec<TopicPartition> = here.iter().map(|&i| partitions[i].clone()).collect();
        let local = self.local.write(&local_tps, marker);
        let sends: Vec<_> = by_leader
            .into_iter()
            .map(|(node, indexes)| {
                let request = request(marker, indexes.iter().map(|&i| &partitions[i]));
                let answer = self.remote.send(node, request);
                async move { (node, indexes, answer.await) }
            })
            .collect();
        let partitions = partitions.to_vec();
        Box::pin(async move {
            let (local, remote) = futures::join!(local, futures::future::join_all(sends));
            debug_assert_eq!(local.len(), here.len(), "one local outcome per partition");
            for (i, outcome) in here.into_iter().zip(local) {
                outcomes[i] = Some(outcome);
            }
            for (node, indexes, answer) in remote {
                for i in indexes {
                    let tp = &partitions[i];
                    outcomes[i] = Some(match &answer {
                        Ok(response) => outcome_in(response, marker, tp, node),
                        Err(e) => Err(MarkerError::Failed(
                            ResponseError::NetworkException,
                            format!("WriteTxnMarkers for {tp} to broker {node}: {e}"),
                        )),
                    });
                }
            }
            outcomes
                .into_iter()
                .map(|o| {
                    debug_assert!(o.is_some(), "every partition has an outcome");
                    o.unwrap_or_else(|| {
                        Err(MarkerError::Failed(ResponseError::UnknownServerError, "no outcome".into()))
                    })
                })
                .collect()
        })
    }
}

/// One WriteTxnMarkers request carrying `marker` for `partitions`.
fn request<'a>(marker: TxnMarker, partitions: impl Iterator<Item = &'a TopicPartition>) -> WriteTxnMarkersRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(tp.topic.as_ref()).or_default().push(tp.partition);
    }
    let mut m = WritableTxnMarker::default();
    m.producer_id = WireProducerId(marker.producer_id.get());
    m.producer_epoch = marker.producer_epoch.get();
    m.transaction_result = marker.marker == Marker::Commit;
    m.coordinator_epoch = marker.coordinator_epoch;
    m.topics = topics
        .into_iter()
        .map(|(name, partition_indexes)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            t.partition_indexes = partition_indexes;
            t
        })
        .collect();
    let mut req = WriteTxnMarkersRequest::default();
    req.markers.push(m);
    req
}

/// `tp`'s outcome in broker `node`'s answer.
fn outcome_in(
    response: &WriteTxnMarkersResponse,
    marker: TxnMarker,
    tp: &TopicPartition,
    node: NodeId,
) -> Result<(), MarkerError> {
    let code = response
        .markers
        .iter()
        .filter(|m| m.producer_id.0 == marker.producer_id.get())
        .flat_map(|m| &m.topics)
        .filter(|t| *t.name.0 == *tp.topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == tp.partition)
        .map(|p| p.error_code);
    let Some(code) = code else {
        return Err(MarkerError::Failed(
            ResponseError::UnknownServerError,
            format!("broker {node} answered WriteTxnMarkers without {tp}"),
        ));
    };
    let message = |e: ResponseError| format!("broker {node} answered {e} for the marker on {tp}");
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(e @ ResponseError::InvalidProducerEpoch) => Err(MarkerError::InvalidProducerEpoch(message(e))),
        Some(e @ ResponseError::TransactionCoordinatorFenced) => Err(MarkerError::CoordinatorFenced(message(e))),
        Some(e) => Err(MarkerError::Failed(e, message(e))),
    }
}

#[cfg(test)]
#[path = "cluster_markers_tests.rs"]
mod tests;
