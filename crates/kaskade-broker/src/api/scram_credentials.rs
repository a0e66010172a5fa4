//! DescribeUserScramCredentials and AlterUserScramCredentials (keys 50,
//! 51; kafka-configs --entity-type users --alter --add-config
//! 'SCRAM-SHA-256=[...]'). The decisions are `crate::scram`'s; changes are
//! appended to the metadata log (fsynced) before they are answered.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kaskade_meta::MetaError;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::scram::{self, Change};

pub async fn describe(
    broker: &Arc<Broker>,
    _version: i16,
    req: DescribeUserScramCredentialsRequest,
) -> Result<DescribeUserScramCredentialsResponse, BrokerError> {
    let users = req.users.map(|us| us.into_iter().map(|u| u.name.to_string()).collect());
    let mut resp = DescribeUserScramCredentialsResponse::default();
    for (user, answer) in scram::describe(&broker.topics.image(), users) {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = StrBytes::from_string(user);
        match answer {
            Ok(infos) => {
                r.credential_infos = infos
                    .into_iter()
                    .map(|info| {
                        let mut i = CredentialInfo::default();
                        i.mechanism = info.mechanism;
                        i.iterations = info.iterations;
                        i
                    })
                    .collect();
            }
            Err(refusal) => {
                r.error_code = refusal.error.code();
                r.error_message = Some(StrBytes::from_string(refusal.message));
            }
        }
        resp.results.push(r);
    }
    Ok(resp)
}

pub async fn alter(
    broker: &Arc<Broker>,
    _version: i16,
    req: AlterUserScramCredentialsRequest,
) -> Result<AlterUserScramCredentialsResponse, BrokerError> {
    let mut changes: Vec<Change> = req
        .deletions
        .into_iter()
        .map(|d| Change::Delete { user: d.name.to_string(), mechanism: d.mechanism })
        .collect();
    changes.extend(req.upsertions.into_iter().map(|u| Change::Upsert {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        iterations: u.iterations,
        salt: u.salt.to_vec(),
        salted_password: u.salted_password.to_vec(),
    }));
    let users: std::collections::BTreeSet<String> = changes.iter().map(|c| c.user().to_string()).collect();
    // The metadata log fsyncs: off the async workers.
    let decided = crate::topic::on_blocking_pool(&broker.topics, move |tm| {
        Ok(tm.update(|image| {
            let a = scram::alter(image, changes.clone());
            Ok::<_, MetaError>((a.records, a.results))
        })?)
    })
    .await;
    let mut resp = AlterUserScramCredentialsResponse::default();
    match decided {
        Ok(results) => {
            for (user, refusal) in results {
                let mut r = AlterUserScramCredentialsResult::default();
                r.user = StrBytes::from_string(user);
                r.error_message = None;
                if let Some(refusal) = refusal {
                    r.error_code = refusal.error.code();
                    r.error_message = Some(StrBytes::from_static_str(refusal.message));
                }
                resp.results.push(r);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "AlterUserScramCredentials: nothing was changed");
            // Nothing was appended: every user's change failed.
            for user in users {
                let mut r = AlterUserScramCredentialsResult::default();
                r.user = StrBytes::from_string(user);
                r.error_code = ResponseError::KafkaStorageError.code();
                r.error_message = Some(StrBytes::from_string(e.message.clone()));
                resp.results.push(r);
            }
        }
    }
    Ok(resp)
}

pub mod describe_route {
    crate::route_to!(DescribeUserScramCredentials, super::describe);
}
pub mod alter_route {
    crate::route_to!(AlterUserScramCredentials, super::alter);
}

/// AlterUserScramCredentials's routes: forwarded to the active controller in a cluster.
pub mod forwarded {
    crate::forwarded_routes!(super::alter_route::route);
}
