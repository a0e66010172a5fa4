//! Listener addresses, `NAME://host:port`, as `listeners` and
//! `advertised.listeners` give them. Names are upper-cased when parsed
//! (Kafka's listener names are case-insensitive); an IPv6 host is written
//! back in brackets.

use std::fmt;

/// A listener, `NAME://host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListenerSpec {
    /// The listener name, upper case (`PLAINTEXT`).
    pub name: String,
    /// The host: empty means every address.
    pub host: String,
    /// The port; 0 asks for an ephemeral port.
    pub port: u16,
}

impl ListenerSpec {
    /// Parses `NAME://host:port`, `NAME://:port`, `NAME://[::1]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) =
            text.split_once("://").ok_or_else(|| format!("'{text}' is not of the form NAME://host:port"))?;
        if name.is_empty() {
            return Err(format!("'{text}' has no listener name"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("'{text}' has an invalid listener name '{name}'"));
        }
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            let (host, tail) =
                after.split_once(']').ok_or_else(|| format!("'{text}' has an unterminated IPv6 address"))?;
            let port = tail.strip_prefix(':').ok_or_else(|| format!("'{text}' has no port"))?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or_else(|| format!("'{text}' has no port"))?
        };
        let port: u16 =
            port.parse().map_err(|_| format!("'{text}' has an invalid port '{port}' (expected 0 to 65535)"))?;
        Ok(ListenerSpec { name: name.to_ascii_uppercase(), host: host.to_string(), port })
    }
}

impl fmt::Display for ListenerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}
