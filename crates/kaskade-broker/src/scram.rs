//! SCRAM credentials (KIP-554) as the controller keeps them: the decisions
//! of AlterUserScramCredentials and DescribeUserScramCredentials over the
//! metadata image, without I/O. Kafka's rules: a user may appear once per
//! request; names are non-empty; the mechanism is SCRAM-SHA-256 (1) or
//! SCRAM-SHA-512 (2); iterations lie in 4096..=16384; only what exists
//! can be deleted or described. The salted password a client sends is
//! turned into RFC 5802's stored and server keys; it is never stored.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use kafka_protocol::error::ResponseError;
use kaskade_meta::{Image, MetadataRecord};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bounds on SCRAM iterations (both mechanisms' minimum is 4096).
const MIN_ITERATIONS: i32 = 4096;
const MAX_ITERATIONS: i32 = 16384;

/// A refusal of one user's change, with Kafka's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error: ResponseError,
    pub message: &'static str,
}

fn refuse(error: ResponseError, message: &'static str) -> Refusal {
    Refusal { error, message }
}

/// One requested change.
#[derive(Clone, Debug)]
pub enum Change {
    Delete { user: String, mechanism: i8 },
    Upsert { user: String, mechanism: i8, iterations: i32, salt: Vec<u8>, salted_password: Vec<u8> },
}

impl Change {
    /// The user the change is for.
    pub fn user(&self) -> &str {
        match self {
            Change::Delete { user, .. } | Change::Upsert { user, .. } => user,
        }
    }
}

/// The outcome of an AlterUserScramCredentials request: the records to
/// append (all or none) and each user's result, in Kafka's order
/// (deletions, then upsertions, then refusals).
#[derive(Debug, Default)]
pub struct Alteration {
    pub records: Vec<MetadataRecord>,
    pub results: Vec<(String, Option<Refusal>)>,
}

fn check_name_and_mechanism(user: &str, mechanism: i8) -> Result<(), Refusal> {
    if user.is_empty() {
        return Err(refuse(ResponseError::UnacceptableCredential, "Username must not be empty"));
    }
    if !matches!(mechanism, 1 | 2) {
        return Err(refuse(ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"));
    }
    Ok(())
}

/// Decides a request's changes against `image`.
pub fn alter(image: &Image, changes: Vec<Change>) -> Alteration {
    let mut deletions: BTreeMap<String, Change> = BTreeMap::new();
    let mut upserts: BTreeMap<String, Change> = BTreeMap::new();
    let mut refused: BTreeMap<String, Refusal> = BTreeMap::new();
    // Deletions are judged before upsertions, as Kafka does.
    let (dels, ups): (Vec<_>, Vec<_>) = changes.into_iter().partition(|c| matches!(c, Change::Delete { .. }));
    for change in dels.into_iter().chain(ups) {
        let user = change.user().to_string();
        if refused.contains_key(&user) {
            continue;
        }
        if deletions.remove(&user).is_some() || upserts.remove(&user).is_some() {
            let twice = "A user credential cannot be altered twice in the same request";
            refused.insert(user, refuse(ResponseError::DuplicateResource, twice));
            continue;
        }
        let verdict = match &change {
            Change::Delete { user, mechanism } => check_name_and_mechanism(user, *mechanism).and_then(|()| {
                let exists = image.scram_credentials().get(user).is_some_and(|m| m.contains_key(mechanism));
                if exists {
                    Ok(())
                } else {
                    let missing = "Attempt to delete a user credential that does not exist";
                    Err(refuse(ResponseError::ResourceNotFound, missing))
                }
            }),
            Change::Upsert { user, mechanism, iterations, .. } => {
                check_name_and_mechanism(user, *mechanism).and_then(|()| {
                    if *iterations < MIN_ITERATIONS {
                        Err(refuse(ResponseError::UnacceptableCredential, "Too few iterations"))
                    } else if *iterations > MAX_ITERATIONS {
                        Err(refuse(ResponseError::UnacceptableCredential, "Too many iterations"))
                    } else {
                        Ok(())
                    }
                })
            }
        };
        match (verdict, &change) {
            (Err(r), _) => {
                refused.insert(user, r);
            }
            (Ok(()), Change::Delete { .. }) => {
                deletions.insert(user, change);
            }
            (Ok(()), Change::Upsert { .. }) => {
                upserts.insert(user, change);
            }
        }
    }
    let mut out = Alteration::default();
    for (user, change) in deletions.into_iter().chain(upserts) {
        match change {
            Change::Delete { mechanism, .. } => {
                out.records.push(MetadataRecord::RemoveScramCredential { user: user.clone(), mechanism });
            }
            Change::Upsert { mechanism, iterations, salt, salted_password, .. } => {
                let (stored_key, server_key) = keys(mechanism, &salted_password);
                out.records.push(MetadataRecord::ScramCredential {
                    user: user.clone(),
                    mechanism,
                    salt,
                    stored_key,
                    server_key,
                    iterations,
                });
            }
        }
        out.results.push((user, None));
    }
    out.results.extend(refused.into_iter().map(|(user, r)| (user, Some(r))));
    out
}

/// RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key")),
/// ServerKey = HMAC(SaltedPassword, "Server Key").
fn keys(mechanism: i8, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
    // HMAC takes keys of any length (RFC 2104): `new_from_slice` only
    // fails for MACs with fixed key sizes, never for these two.
    const ANY_KEY: &str = "HMAC accepts keys of any length";
    if mechanism == 2 {
        let hmac = |label: &[u8]| {
            let mut mac = Hmac::<Sha512>::new_from_slice(salted_password).expect(ANY_KEY);
            mac.update(label);
            mac.finalize().into_bytes().to_vec()
        };
        (Sha512::digest(hmac(b"Client Key")).to_vec(), hmac(b"Server Key"))
    } else {
        let hmac = |label: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(salted_password).expect(ANY_KEY);
            mac.update(label);
            mac.finalize().into_bytes().to_vec()
        };
        (Sha256::digest(hmac(b"Client Key")).to_vec(), hmac(b"Server Key"))
    }
}

/// One mechanism of a user's credentials, as DescribeUserScramCredentials
/// lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialInfo {
    pub mechanism: i8,
    pub iterations: i32,
}

/// Why a user could not be described: Kafka's error and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeRefusal {
    pub error: ResponseError,
    pub message: String,
}

/// One user's answer to DescribeUserScramCredentials: its mechanisms with
/// their iterations, or an error with Kafka's message.
pub type Described = (String, Result<Vec<CredentialInfo>, DescribeRefusal>);

/// Describes the named users (every user with a credential when `users`
/// is `None` or empty).
pub fn describe(image: &Image, users: Option<Vec<String>>) -> Vec<Described> {
    let all = image.scram_credentials();
    let infos = |m: &BTreeMap<i8, kaskade_meta::ScramCredential>| {
        m.iter().map(|(k, c)| CredentialInfo { mechanism: *k, iterations: c.iterations }).collect()
    };
    let users = match users {
        Some(u) if !u.is_empty() => u,
        _ => return all.iter().map(|(u, m)| (u.clone(), Ok(infos(m)))).collect(),
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for u in &users {
        *seen.entry(u.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    let mut answered = std::collections::BTreeSet::new();
    for u in &users {
        if !answered.insert(u.as_str()) {
            continue;
        }
        let answer = if seen[u.as_str()] > 1 {
            Err(DescribeRefusal {
                error: ResponseError::DuplicateResource,
                message: format!("Cannot describe SCRAM credentials for the same user twice in a single request: {u}"),
            })
        } else {
            match all.get(u) {
                Some(m) => Ok(infos(m)),
                None => Err(DescribeRefusal {
                    error: ResponseError::ResourceNotFound,
                    message: format!("Attempt to describe a user credential that does not exist: {u}"),
                }),
            }
        };
        out.push((u.clone(), answer));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Change {
        Change::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: vec![7; 32],
        }
    }

    fn applied(image: &mut Image, a: &Alteration) {
        for r in &a.records {
            image.apply(r);
        }
    }

    #[test]
    fn upsert_describe_delete_round_trip() {
        let mut image = Image::default();
        let a = alter(&image, vec![upsert("alice", 1, 8192), upsert("bob", 2, 4096)]);
        assert_eq!(a.results, vec![("alice".into(), None), ("bob".into(), None)]);
        applied(&mut image, &a);
        let d = describe(&image, None);
        let info = |mechanism, iterations| CredentialInfo { mechanism, iterations };
        assert_eq!(d, vec![("alice".into(), Ok(vec![info(1, 8192)])), ("bob".into(), Ok(vec![info(2, 4096)]))]);
        // The salted password is not what is stored.
        let stored = &image.scram_credentials()["alice"][&1];
        assert_eq!(stored.stored_key.len(), 32);
        assert_ne!(stored.server_key, vec![7; 32]);
        let a = alter(&image, vec![Change::Delete { user: "alice".into(), mechanism: 1 }]);
        assert_eq!(a.results, vec![("alice".into(), None)]);
        applied(&mut image, &a);
        let d = describe(&image, Some(vec!["alice".into()]));
        assert_eq!(d[0].1.as_ref().unwrap_err().error, ResponseError::ResourceNotFound);
    }

    #[test]
    fn kafkas_refusals() {
        let image = Image::default();
        let a = alter(
            &image,
            vec![
                upsert("", 1, 8192),
                upsert("few", 1, 100),
                upsert("many", 1, 20000),
                upsert("mech", 3, 8192),
                upsert("twice", 1, 8192),
                upsert("twice", 2, 8192),
                Change::Delete { user: "ghost".into(), mechanism: 1 },
            ],
        );
        assert!(a.records.is_empty());
        let got: BTreeMap<String, ResponseError> =
            a.results.into_iter().map(|(u, r)| (u, r.expect("refused").error)).collect();
        assert_eq!(got[""], ResponseError::UnacceptableCredential);
        assert_eq!(got["few"], ResponseError::UnacceptableCredential);
        assert_eq!(got["many"], ResponseError::UnacceptableCredential);
        assert_eq!(got["mech"], ResponseError::UnsupportedSaslMechanism);
        assert_eq!(got["twice"], ResponseError::DuplicateResource);
        assert_eq!(got["ghost"], ResponseError::ResourceNotFound);
        let d = describe(&image, Some(vec!["x".into(), "x".into()]));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1.as_ref().unwrap_err().error, ResponseError::DuplicateResource);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn keys_follow_rfc_5802() {
        // RFC 7677's example: password "pencil", salt
        // "W22ZaJ0SNY7soEsUEjb6gQ==", 4096 iterations give this salted
        // password; the expected keys were computed with Python's hmac and
        // hashlib.
        let salted: Vec<u8> = (0..32)
            .map(|i| {
                let h = "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d";
                u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex")
            })
            .collect();
        let (stored, server) = keys(1, &salted);
        assert_eq!(hex(&stored), "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6");
        assert_eq!(hex(&server), "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5");
        let salted512: Vec<u8> = (0..64).collect();
        let (stored, server) = keys(2, &salted512);
        assert_eq!(hex(&stored[..16]), "abf12b79129219421947550f0fda721e");
        assert_eq!(server.len(), 64);
    }
}
