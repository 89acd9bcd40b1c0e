//! The shapes the API returns and the CLI prints with `--json`. One set of
//! types serves both paths (daemon and embedded), so their output matches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// This node and where peers can reach it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Identity {
    /// The node id (libp2p peer id of the device key).
    pub node_id: String,
    /// Addresses peers can dial as given, each ending in `/p2p/<node_id>`.
    pub listen_addrs: Vec<String>,
}

/// A request to create a space.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateSpace {
    /// Its name: 1 to 128 characters (and at most 128 bytes of UTF-8),
    /// no control characters, not blank; `default` is reserved.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
}

/// A newly created or joined space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpaceRef {
    /// The space id (its public key, base58).
    pub id: String,
}

/// A joined space and where this device stands in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Joined {
    /// The space id (its public key, base58).
    pub id: String,
    /// `admin`, `writer` or `reader` once the inviter admitted this device;
    /// `pending` while it has not answered (the space stays joined and is
    /// admitted when the inviter is reachable). A refusal is an error
    /// (409, `refused`), never this field.
    pub state: String,
}

/// A space this device is in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Space {
    /// The space id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// This device's role (`reader`, `writer`, `admin`), once known.
    pub role: Option<String>,
    /// Where this device stands: `pending` (waiting for the inviter),
    /// `refused` (see `reason`), or its role (`reader`, `writer`, `admin`).
    pub state: String,
    /// Why an admin or the inviter refused this device (their words, not
    /// Weft's); `null` unless `state` is `refused`.
    pub reason: Option<String>,
    /// Members by node id, with their roles.
    pub members: BTreeMap<String, String>,
    /// Whether it is the device's default (personal) space.
    pub default: bool,
}

/// A request for an invite token.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct InviteRequest {
    /// `reader`, `writer` (default) or `admin`.
    #[serde(default)]
    #[schema(pattern = "^(reader|writer|admin)$")]
    pub role: Option<String>,
    /// How long the token is valid: a whole number with a unit `s` (or
    /// none), `m`, `h`, `d` or `w` (`90s`, `30m`, `12h`, `7d` (default),
    /// `2w`), more than 0 and at most 100 years; the pattern states
    /// exactly that.
    #[serde(default)]
    pub expires: Option<String>,
    /// Only this node may use the token (its node id, base58).
    #[serde(default)]
    pub node: Option<String>,
}

/// An invite token to hand to the joining device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    /// The token (`weft-invite-...`).
    pub token: String,
    /// The space it joins.
    pub space: String,
    /// The role it grants.
    pub role: String,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
}

/// A request to join a space.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JoinRequest {
    /// The invite token (`weft-invite-...`).
    #[schema(min_length = 1, max_length = 65536)]
    pub token: String,
    /// Wait until the inviter admits or refuses this device (default
    /// `true`); `false` answers at once with the state then (`pending`
    /// unless this device was already a member).
    #[serde(default)]
    pub wait: Option<bool>,
    /// How long to wait, in seconds, at most 86400 (default: the daemon's
    /// `status_timeout`, else 60). Still pending then: `state: "pending"`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86400)]
    pub timeout_secs: Option<f64>,
}

/// The result of a write: the document's heads after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Written {
    /// Hex change hashes.
    pub heads: Vec<String>,
}

/// One document in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its JSON.
    #[schema(value_type = Object)]
    pub doc: Value,
}

/// Query parameters of a listing. `where` may repeat (`where=done=false&where=n>3`).
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `FIELD=VALUE` (also `!=`, `<`, `<=`, `>`, `>=`); VALUE is JSON when it
    /// parses as a JSON scalar, a string otherwise. May repeat.
    #[serde(default, rename = "where")]
    #[param(
        rename = "where",
        max_items = 32,
        pattern = r"^[^=!<>]*[^=!<>\s][^=!<>]*(!=|<|>|=)[\s\S]*$"
    )]
    pub filters: Vec<String>,
    /// A field to sort by (a dotted path); not with `after`.
    #[param(min_length = 1, max_length = 256)]
    pub order: Option<String>,
    /// Sort largest first.
    #[serde(default)]
    pub desc: bool,
    /// At most this many documents in this page (1 to 10,000; default
    /// 10,000). When more match, the answer links the next page.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// Only documents whose id sorts after this one: the cursor the
    /// previous page's `Link: <...>; rel="next"` carries. Pages by id, so
    /// not with `order`.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub after: Option<String>,
}

/// A read-only SQL statement.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SqlRequest {
    /// One `SELECT` (or `WITH ... SELECT`) statement.
    #[schema(min_length = 1)]
    pub sql: String,
}

/// One change in a document's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// The change hash (hex).
    pub hash: String,
    /// The node that made it, when known.
    pub author: Option<String>,
    /// The Automerge actor (hex).
    pub actor: String,
    /// The actor's sequence number.
    pub seq: u64,
    /// Unix seconds, as recorded by the author (advisory).
    pub time: i64,
    /// `put`, `patch`, `delete`, or a peer's own message.
    pub message: Option<String>,
    /// Hashes this change depends on.
    pub deps: Vec<String>,
}

/// The answer of `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the daemon answers.
    pub status: String,
    /// The daemon's version.
    pub version: String,
}

/// A peer and how far sync with it has come.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Peer {
    /// Its node id.
    pub id: String,
    /// Addresses it was seen at.
    pub addrs: Vec<String>,
    /// Whether a connection is up now.
    pub connected: bool,
    /// When it was last connected (unix milliseconds).
    pub last_seen_ms: Option<i64>,
    /// Documents still being exchanged with it, per space.
    pub pending: BTreeMap<String, usize>,
}

/// A document's name for automerge-repo apps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomergeUrl {
    /// `automerge:<bs58check id>`, the same on every replica.
    pub url: String,
}

/// A request to dial a peer.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectRequest {
    /// A multiaddr ending in `/p2p/<node id>`.
    #[schema(min_length = 1, max_length = 1024, pattern = "^/")]
    pub addr: String,
}

/// The peer a connect reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Connected {
    /// Its node id.
    pub node_id: String,
}

/// Sync progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncState {
    /// Peers with an open sync session.
    pub peers: usize,
    /// Documents still being exchanged, over all peers and spaces.
    pub pending: usize,
    /// Every session has reconciled and has nothing left to exchange.
    pub idle: bool,
}

/// Sync traffic since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Traffic {
    /// Frames written to peers.
    pub frames_sent: u64,
    /// Frames read from peers.
    pub frames_received: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
}

/// A summary of the node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// The version of the `weft` serving the answer (the daemon's).
    pub version: String,
    /// The API's base URL (`http://127.0.0.1:PORT`); `null` when no daemon
    /// runs (the CLI opened the replica itself).
    pub api: Option<String>,
    /// The replica's directory.
    pub data_dir: String,
    /// Whole seconds since the node started (the daemon's start; embedded,
    /// the command's own).
    pub uptime_secs: u64,
    /// This node.
    pub node_id: String,
    /// Live documents stored.
    pub documents: u64,
    /// Spaces this device is in.
    pub spaces: usize,
    /// Connected peers.
    pub peers_connected: usize,
    /// Whether networking is on (false in embedded CLI mode).
    pub online: bool,
    /// Sync progress.
    pub sync: SyncState,
    /// Sync traffic.
    pub traffic: Traffic,
}

/// A committed change, as streamed by `GET /v1/events` and `weft watch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// The space id.
    pub space: String,
    /// The collection.
    pub collection: String,
    /// The document id.
    pub id: String,
    /// Heads after the change.
    pub heads: Vec<String>,
    /// Whether the document is now deleted.
    pub deleted: bool,
    /// `local` or `remote`.
    pub origin: String,
    /// This replica's sequence number of the change (also the SSE `id`):
    /// strictly increasing, never reused; pass it as `since` to resume.
    pub seq: u64,
    /// With `include_docs=true`: the document when the event was sent
    /// (`null` if deleted); absent otherwise.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub doc: Option<Value>,
}

/// A field that is present, even as `null`, is `Some` (serde reads a
/// `null` `Option` as `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Filters of the event stream.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only this space (id, name or `default`).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub space: Option<String>,
    /// Only this collection.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    pub collection: Option<String>,
    /// First replay, from the store, the latest change of every document
    /// changed after this sequence number (0: everything). A
    /// `Last-Event-ID` header wins over it.
    pub since: Option<u64>,
    /// Put each event's document in it as `doc` (`null` when deleted).
    pub include_docs: Option<bool>,
}

/// A space in a path: its id, the name of a joined space, or `default`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SpacePath {
    /// Space id, name, or `default` (1 to 128 characters, no control
    /// characters).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub space: String,
}

/// A collection in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CollectionPath {
    /// Space id, name, or `default` (1 to 128 characters, no control
    /// characters).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub space: String,
    /// Collection name: 1 to 128 of `A-Z a-z 0-9 _ - .`.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    pub collection: String,
}

/// A document in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DocPath {
    /// Space id, name, or `default` (1 to 128 characters, no control
    /// characters).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub space: String,
    /// Collection name: 1 to 128 of `A-Z a-z 0-9 _ - .`.
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.-]+$")]
    pub collection: String,
    /// Document id, percent-encoded: 1 to 256 characters (and at most 256
    /// bytes of UTF-8), no control characters.
    #[param(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub id: String,
}

/// A member of a space in a path.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// Space id, name, or `default` (1 to 128 characters, no control
    /// characters).
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    pub space: String,
    /// The member's node id (base58; its exact pattern is
    /// `crate::patterns::NODE_ID`).
    pub node_id: String,
}

/// Every error body: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// `invalid_input`, `invalid_invite`, `not_found`, `forbidden`,
    /// `unauthorized`, `conflict`, `refused`, `precondition_failed`,
    /// `timeout`, `network`, `unavailable` or `internal`.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
    /// For a failed batch, the position of the failing operation (from 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}
