//! `controller.quorum.initial.controllers` (Kaskade's; Kafka's
//! `kafka-storage format --initial-controllers`): the voters a dynamic
//! quorum (KIP-853) starts with, `id@host:port:directory-id,...`, each
//! entry parsed as Kafka's `DynamicVoter.parse` parses it, with its
//! messages. Kaskade has no format step: every controller named here, given
//! the same list, forms the quorum from it on its first start (the Raft log
//! then holds the membership, and the list is no longer read), and writes
//! its own entry's directory id into its `meta.properties`, as Kafka's
//! format does for a `DYNAMIC_METADATA_VOTER_DIRECTORY`.
//!
//! Invariants: ids are unique; every entry has a host, a port and a
//! non-zero directory id.

use std::collections::BTreeSet;
use std::fmt;

use kaskade_types::NodeId;

use super::kraft::HostPort;
use crate::meta_properties::{base64_uuid, parse_base64_uuid};

/// The configuration key.
pub const KEY: &str = "controller.quorum.initial.controllers";

/// One initial voter: `id@host:port:directory-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialController {
    pub id: NodeId,
    /// Its controller listener.
    pub address: HostPort,
    /// The directory id of its metadata log (`meta.properties`).
    pub directory_id: uuid::Uuid,
}

impl InitialController {
    /// Parses one entry with the messages of Kafka's `DynamicVoter.parse`.
    pub fn parse(entry: &str) -> Result<InitialController, String> {
        let input = entry.trim();
        let at = input.find('@').ok_or("No @ found in dynamic voter string.")?;
        if at == 0 {
            return Err("Invalid @ at beginning of dynamic voter string.".into());
        }
        let id: i32 =
            input[..at].parse().map_err(|_| "Failed to parse node id in dynamic voter string.".to_string())?;
        if id < 0 {
            return Err(format!("Invalid negative node id {id} in dynamic voter string."));
        }
        let rest = &input[at + 1..];
        if rest.is_empty() {
            return Err("No hostname found after node id.".into());
        }
        let (host, rest) = if let Some(bracketed) = rest.strip_prefix('[') {
            let end = bracketed.find(']').ok_or("Hostname began with left bracket, but no right bracket was found.")?;
            (&bracketed[..end], &bracketed[end + 1..])
        } else {
            let end = rest.find(':').ok_or("No colon following hostname could be found.")?;
            (&rest[..end], &rest[end..])
        };
        let rest = rest.strip_prefix(':').ok_or("Port section must start with a colon.")?;
        let end = rest.find(':').ok_or("No colon following port could be found.")?;
        let port: i64 = rest[..end].parse().map_err(|_| "Failed to parse port in dynamic voter string.".to_string())?;
        // Kafka accepts port 0 here; a controller listener on port 0 could
        // never be reached, so Kaskade refuses it with Kafka's message.
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("Invalid port {port} in dynamic voter string."))?;
        if host.is_empty() {
            return Err("No hostname found after node id.".into());
        }
        let directory_id = parse_base64_uuid(&rest[end + 1..])
            .filter(|d| !d.is_nil())
            .ok_or("Failed to parse directory ID in dynamic voter string.")?;
        Ok(InitialController { id: NodeId(id), address: HostPort { host: host.to_string(), port }, directory_id })
    }
}

impl fmt::Display for InitialController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.address, base64_uuid(self.directory_id))
    }
}

/// Parses the whole list (`DynamicVoters.parse`): entries separated by
/// commas, each id at most once.
pub fn parse_list(text: &str) -> Result<Vec<InitialController>, String> {
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let c = InitialController::parse(entry).map_err(|e| format!("Invalid value for {KEY}: {entry}: {e}"))?;
        if !ids.insert(c.id) {
            return Err(format!("Invalid value for {KEY}: Node id {} was specified more than once.", c.id));
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "K90IZ-0DRNazJ49kCZ1EMQ";

    #[test]
    fn entries_parse_as_kafkas_dynamic_voters() {
        let c = InitialController::parse(&format!(" 3000@[::1]:9093:{DIR} ")).expect("ipv6");
        assert_eq!((c.id, c.address.host.as_str(), c.address.port), (NodeId(3000), "::1", 9093));
        assert_eq!(base64_uuid(c.directory_id), DIR);
        assert_eq!(c.to_string(), format!("3000@[::1]:9093:{DIR}"));
        let c = InitialController::parse(&format!("1@c1:9093:{DIR}")).expect("host name");
        assert_eq!(c.to_string(), format!("1@c1:9093:{DIR}"));
    }

    #[test]
    fn malformed_entries_get_kafkas_messages() {
        let cases = [
            ("c1:9093", "No @ found in dynamic voter string."),
            ("@c1:9093:x", "Invalid @ at beginning of dynamic voter string."),
            ("one@c1:9093:x", "Failed to parse node id in dynamic voter string."),
            ("-1@c1:9093:x", "Invalid negative node id -1 in dynamic voter string."),
            ("1@", "No hostname found after node id."),
            ("1@[::1:9093:x", "Hostname began with left bracket, but no right bracket was found."),
            ("1@c1", "No colon following hostname could be found."),
            ("1@[::1]9093", "Port section must start with a colon."),
            ("1@c1:9093", "No colon following port could be found."),
            ("1@c1:port:x", "Failed to parse port in dynamic voter string."),
            ("1@c1:70000:x", "Invalid port 70000 in dynamic voter string."),
            ("1@c1:9093:not-a-uuid", "Failed to parse directory ID in dynamic voter string."),
            ("1@c1:9093:AAAAAAAAAAAAAAAAAAAAAA", "Failed to parse directory ID in dynamic voter string."),
        ];
        for (entry, message) in cases {
            assert_eq!(InitialController::parse(entry), Err(message.to_string()), "{entry}");
        }
    }

    #[test]
    fn a_list_names_each_id_once() {
        let two = parse_list(&format!("1@c1:9093:{DIR}, 2@c2:9093:{DIR}")).expect("two");
        assert_eq!(two.iter().map(|c| c.id.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(parse_list(""), Ok(vec![]));
        let twice = parse_list(&format!("1@c1:9093:{DIR},1@c2:9093:{DIR}")).unwrap_err();
        assert!(twice.ends_with("Node id 1 was specified more than once."), "{twice}");
        let bad = parse_list("1@c1:9093").unwrap_err();
        assert_eq!(bad, format!("Invalid value for {KEY}: 1@c1:9093: No colon following port could be found."));
    }
}
