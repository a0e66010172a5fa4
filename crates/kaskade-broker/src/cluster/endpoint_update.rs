//! A voter of a dynamic quorum that starts on another controller listener
//! address than its stored membership holds (moved to another host or
//! port) tells the active controller with UpdateRaftVoter (KIP-853), as
//! Kafka's voter does on start (`api::update_raft_voter` answers).
//!
//! Until the leader stores the new address it replicates to the old one, so
//! this voter does not learn from Raft who leads: it asks the other voters
//! at their stored addresses and follows the leader (and leader epoch)
//! their answers name (`current_leader`). A leader that moved updates its
//! own entry directly.
//!
//! Invariant: it stops once the stored address is this listener's, once
//! the update was accepted, or on an answer that retrying cannot change
//! (a static quorum, an unknown voter key, another cluster, a malformed
//! request), saying why in the log; every attempt is bounded.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_raft_voter_request::{KRaftVersionFeature, Listener};
use kafka_protocol::messages::{UpdateRaftVoterRequest, UpdateRaftVoterResponse};
use kafka_protocol::protocol::StrBytes;
use kaskade_client::connection::{Connection, ConnectionConfig};
use kaskade_meta::quorum::VoterKey;
use kaskade_meta::QuorumMetadataLog;

/// Pause between rounds of asking.
const RETRY: Duration = Duration::from_millis(500);
/// Bounds on one connection and one request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

/// What this voter tells the leader.
pub struct Update {
    pub cluster_id: String,
    /// The controller listener's name and this voter's `host:port` there.
    pub listener: String,
    pub address: String,
    pub directory_id: uuid::Uuid,
    pub client_id: String,
}

/// Whether `addr` names a host other controllers could reach (a listener
/// bound to every address does not: its stored address stays as given).
pub(super) fn routable(addr: &str) -> bool {
    split(addr).is_some_and(|(host, _)| host.parse::<std::net::IpAddr>().map_or(true, |ip| !ip.is_unspecified()))
}

fn split(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host, port.parse().ok()?))
}

fn request(update: &Update, voter_id: i32, epoch: i32) -> Option<UpdateRaftVoterRequest> {
    let (host, port) = split(&update.address)?;
    let mut listener = Listener::default();
    listener.name = StrBytes::from_string(update.listener.clone());
    listener.host = StrBytes::from_string(host.to_string());
    listener.port = port;
    let mut versions = KRaftVersionFeature::default();
    versions.min_supported_version = 0;
    versions.max_supported_version = 1;
    let mut req = UpdateRaftVoterRequest::default();
    req.cluster_id = Some(StrBytes::from_string(update.cluster_id.clone()));
    req.current_leader_epoch = epoch;
    req.voter_id = voter_id;
    req.voter_directory_id = update.directory_id;
    req.listeners.push(listener);
    req.k_raft_version_feature = versions;
    Some(req)
}

async fn ask(addr: &str, req: &UpdateRaftVoterRequest, client_id: &str) -> Option<UpdateRaftVoterResponse> {
    let config = ConnectionConfig {
        client_id: client_id.to_string(),
        connect_timeout: CONNECT_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
    };
    let conn = Connection::connect(addr, config).await.ok()?;
    let version = conn.version::<UpdateRaftVoterRequest>().ok()?;
    conn.send(req, version).await.ok()
}

/// Tells the leader this voter's new address, if it moved; see the module docs.
pub async fn run(quorum: QuorumMetadataLog, update: Update) {
    let own = quorum.node_id();
    let key = VoterKey { id: own, directory_id: Some(update.directory_id) };
    // Where to ask next: the leader an answer named, with its epoch.
    let mut hint: Option<(String, i32)> = None;
    loop {
        match quorum.own_stored_address().await {
            Ok(Some(stored)) if stored != update.address => {
                if hint.is_none() {
                    tracing::info!(
                        node = own.get(),
                        stored,
                        address = update.address,
                        "this controller's listener moved: telling the active controller (UpdateRaftVoter)"
                    );
                }
            }
            // Not a member (yet, or any more), or nothing moved.
            _ => return,
        }
        let (leader, term) = quorum.leader_and_epoch();
        if leader.as_ref().is_some_and(|(id, _)| *id == own) {
            match quorum.update_voter(key, &update.address, REQUEST_TIMEOUT).await {
                Ok(()) => return,
                Err(e) => tracing::info!(node = own.get(), error = %e, "updating this leader's own address"),
            }
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let epoch = hint.as_ref().map_or_else(|| i32::try_from(term).unwrap_or(i32::MAX), |(_, e)| *e);
        let mut targets: Vec<String> = hint.take().map(|(a, _)| a).into_iter().collect();
        targets.extend(quorum.voter_nodes().into_iter().filter(|(id, _)| *id != own).map(|(_, n)| n.addr));
        for addr in targets {
            let Some(req) = request(&update, own.get(), epoch) else { return };
            let Some(resp) = ask(&addr, &req, &update.client_id).await else { continue };
            let code = ResponseError::try_from_code(resp.error_code);
            match code {
                None => {
                    tracing::info!(
                        node = own.get(),
                        address = update.address,
                        "the active controller took this controller's new address"
                    );
                    return;
                }
                Some(
                    e @ (ResponseError::UnsupportedVersion
                    | ResponseError::VoterNotFound
                    | ResponseError::InconsistentClusterId
                    | ResponseError::InvalidRequest),
                ) => {
                    tracing::warn!(
                        node = own.get(),
                        error = ?e,
                        "the active controller refused this controller's new address (UpdateRaftVoter); the other \
                         controllers keep trying its old one"
                    );
                    return;
                }
                Some(_) => {
                    let l = &resp.current_leader;
                    if l.leader_id.0 >= 0 && !l.host.is_empty() && l.port > 0 {
                        let host = l.host.as_str();
                        let at = if host.contains(':') {
                            format!("[{host}]:{}", l.port)
                        } else {
                            format!("{host}:{}", l.port)
                        };
                        hint = Some((at, l.leader_epoch));
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_address_others_can_reach_is_sent() {
        assert!(routable("127.0.0.1:9093") && routable("c1:9093") && routable("[::1]:9093"));
        assert!(!routable("0.0.0.0:9093") && !routable("[::]:9093") && !routable("c1"));
    }

    #[test]
    fn the_request_names_this_voter_at_its_new_address() {
        let update = Update {
            cluster_id: "MkU3OEVBNTcwNTJENDM2Qk".into(),
            listener: "CONTROLLER".into(),
            address: "[::1]:9095".into(),
            directory_id: uuid::Uuid::from_u128(3),
            client_id: "test".into(),
        };
        let req = request(&update, 3, 7).expect("a request");
        assert_eq!((req.voter_id, req.current_leader_epoch, req.voter_directory_id), (3, 7, update.directory_id));
        let l = &req.listeners[0];
        assert_eq!((l.name.as_str(), l.host.as_str(), l.port), ("CONTROLLER", "::1", 9095));
        let v = &req.k_raft_version_feature;
        assert_eq!((v.min_supported_version, v.max_supported_version), (0, 1));
    }
}
