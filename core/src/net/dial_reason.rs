//! Why a dial failed, in words for people. libp2p's own `Display` nests
//! transport errors (`Failed to negotiate transport protocol(s): [(addr: :
//! Connection refused (os error 111): ...)]`); the CLI and the API show
//! this instead, and the full error goes to the debug log.

use std::io;

use libp2p::core::transport::TransportError;
use libp2p::swarm::DialError;

/// A short reason per address tried, `ADDR: REASON; ADDR: REASON`.
pub(crate) fn dial_reason(error: &DialError) -> String {
    match error {
        DialError::Transport(tried) if !tried.is_empty() => tried
            .iter()
            .map(|(addr, e)| {
                let why = match e {
                    TransportError::MultiaddrNotSupported(_) => {
                        "an address of a kind this node cannot dial".to_owned()
                    }
                    TransportError::Other(e) => io_reason(e).to_owned(),
                };
                format!("{addr}: {why}")
            })
            .collect::<Vec<_>>()
            .join("; "),
        DialError::Transport(_) | DialError::NoAddresses => {
            "no address is known for that peer".to_owned()
        }
        DialError::LocalPeerId { address } => format!("{address} is this node itself"),
        DialError::WrongPeerId { obtained, address } => {
            format!("{address} answered as node {obtained}, not the node id in the address")
        }
        DialError::Denied { .. } => {
            "this node refused the connection (too many connections)".to_owned()
        }
        DialError::Aborted => "the dial was cancelled".to_owned(),
        DialError::DialPeerConditionFalse(_) => "that peer is being dialed already".to_owned(),
    }
}

/// The first specific I/O condition in the error's chain; transports wrap
/// the socket's error in their own.
fn io_reason(error: &io::Error) -> &'static str {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            let why = match io.kind() {
                io::ErrorKind::ConnectionRefused => {
                    Some("connection refused (is the peer's daemon running there?)")
                }
                io::ErrorKind::TimedOut => Some("timed out"),
                io::ErrorKind::HostUnreachable => Some("host unreachable"),
                io::ErrorKind::NetworkUnreachable => Some("network unreachable"),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    Some("the connection was closed by the other side")
                }
                io::ErrorKind::AddrNotAvailable => Some("address not available on this machine"),
                io::ErrorKind::PermissionDenied => Some("not permitted"),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                    Some("the other side does not speak Weft's protocol")
                }
                _ => None,
            };
            if let Some(why) = why {
                return why;
            }
            // An io::Error's `source()` skips the error it wraps.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        next = e.source();
    }
    // TCP's socket error sits inside `Either`s whose `source()` skips it;
    // its text (the OS's, through std) still names the condition.
    let text = error.to_string().to_ascii_lowercase();
    [
        (
            "connection refused",
            "connection refused (is the peer's daemon running there?)",
        ),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("no route to host", "host unreachable"),
        ("host is unreachable", "host unreachable"),
        ("network is unreachable", "network unreachable"),
        (
            "connection reset",
            "the connection was closed by the other side",
        ),
        (
            "multistream",
            "the other side does not speak Weft's protocol",
        ),
        ("noise", "the secure handshake failed (not a Weft node?)"),
        (
            "handshake",
            "the secure handshake failed (not a Weft node?)",
        ),
    ]
    .iter()
    .find(|(needle, _)| text.contains(needle))
    .map_or("could not connect", |(_, why)| why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::{Multiaddr, PeerId};

    fn wrapped(kind: io::ErrorKind) -> io::Error {
        // As the TCP transport nests it: an opaque error around the socket's.
        io::Error::other(io::Error::new(kind, "os error"))
    }

    #[test]
    fn reasons_are_short_words_not_nested_debug_text() {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let refused = DialError::Transport(vec![(
            addr.clone(),
            TransportError::Other(wrapped(io::ErrorKind::ConnectionRefused)),
        )]);
        assert_eq!(
            dial_reason(&refused),
            "/ip4/127.0.0.1/tcp/1: connection refused (is the peer's daemon running there?)"
        );
        let two = DialError::Transport(vec![
            (
                addr.clone(),
                TransportError::Other(wrapped(io::ErrorKind::TimedOut)),
            ),
            (
                addr.clone(),
                TransportError::Other(io::Error::other("weird")),
            ),
        ]);
        assert_eq!(
            dial_reason(&two),
            "/ip4/127.0.0.1/tcp/1: timed out; /ip4/127.0.0.1/tcp/1: could not connect"
        );
        // Hidden behind a wrapper whose `source()` skips it: read from the text.
        let hidden = DialError::Transport(vec![(
            addr.clone(),
            TransportError::Other(io::Error::other(
                "Connection refused (os error 111): Connection refused (os error 111)",
            )),
        )]);
        assert!(
            dial_reason(&hidden)
                .ends_with("connection refused (is the peer's daemon running there?)")
        );
        let other = PeerId::random();
        let wrong = DialError::WrongPeerId {
            obtained: other,
            address: addr.clone(),
        };
        assert!(dial_reason(&wrong).contains(&other.to_string()));
        for e in [
            refused,
            two,
            wrong,
            DialError::NoAddresses,
            DialError::Aborted,
        ] {
            let text = dial_reason(&e);
            for internal in ["os error", "Custom", "kind:", "[(", "Failed to negotiate"] {
                assert!(!text.contains(internal), "{text}");
            }
        }
    }
}
