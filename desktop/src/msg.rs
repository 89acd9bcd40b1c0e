//! The messages between the UI and the backend task: `Command`s go to the
//! node, `Update`s come back. Both are plain data so the UI state can be
//! driven (and tested) without a node.

use serde_json::{Map, Value};

/// The collection notes live in.
pub const NOTES: &str = "notes";

/// What the UI asks the backend to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Reload the list of spaces.
    ListSpaces,
    /// Create a space with this name.
    CreateSpace(String),
    /// Issue an invite token (writer role) for a space.
    Invite(String),
    /// Join a space with a pasted token.
    Join(String),
    /// Dial a peer's multiaddr.
    Connect(String),
    /// Show this space: the backend reloads its notes and collections.
    SelectSpace(String),
    /// Create an empty note in a space.
    CreateNote { space: String },
    /// Load a note into the editor.
    OpenNote { space: String, id: String },
    /// Store the editor's text. `base` is the stored text the edit started
    /// from, so the backend can rebase it over changes that arrived since.
    SaveNote {
        space: String,
        id: String,
        base: NoteText,
        edited: NoteText,
    },
    /// Reload the document ids of a collection.
    ListDocs { space: String, collection: String },
    /// Load a document into the JSON editor.
    OpenDoc {
        space: String,
        collection: String,
        id: String,
    },
    /// Store a document (already validated by the UI).
    SaveDoc {
        space: String,
        collection: String,
        id: String,
        json: Map<String, Value>,
    },
    /// Load a document's history.
    History {
        space: String,
        collection: String,
        id: String,
    },
}

/// A note's editable fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteText {
    pub title: String,
    pub body: String,
}

/// One row of the notes list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSummary {
    pub id: String,
    pub title: String,
    /// Unix milliseconds of the last edit.
    pub updated: i64,
}

/// Networking and sync at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetSummary {
    pub online: bool,
    pub peers_connected: usize,
    pub pending: usize,
    pub documents: u64,
    pub listen_addrs: Vec<String>,
}

/// Why a note's text is being sent to the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteSource {
    /// Opened by the user.
    Opened,
    /// Changed by a peer while open.
    Remote,
    /// The stored text after the UI's save (rebased over remote changes).
    Saved,
}

/// Whose replica the app shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Its own node in its own data dir (no daemon ran for it at start).
    Embedded,
    /// A running `weft daemon`, through its local API at `api`
    /// (`127.0.0.1:PORT`).
    Attached { api: String },
}

impl Mode {
    /// The window title, which says the mode.
    pub fn title(&self) -> String {
        match self {
            Mode::Embedded => "Weft — this app's own replica".to_owned(),
            Mode::Attached { api } => format!("Weft — attached to the daemon at {api}"),
        }
    }
}

/// What the backend tells the UI.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The node is open.
    Ready {
        node_id: String,
        default_space: String,
    },
    /// Which replica the app shows; sent once, before `Ready`.
    Mode(Mode),
    /// Attached: the daemon answers again (`None`), or went away
    /// (`Some(why)`) and is being retried.
    Link(Option<String>),
    /// The node could not be opened; nothing else will work.
    Fatal(String),
    Spaces(Vec<weft_core::SpaceInfo>),
    /// A space was created or joined: select it.
    SpaceAdded(String),
    /// Where this device stands in a space it joined: `state` is its role
    /// once admitted, `refused` (with the inviter's `reason`), or `pending`
    /// while the inviter has not answered.
    Admission {
        space: String,
        state: String,
        reason: Option<String>,
    },
    Invite {
        space: String,
        token: String,
    },
    Connected(String),
    Notes {
        space: String,
        notes: Vec<NoteSummary>,
    },
    Note {
        space: String,
        id: String,
        text: NoteText,
        source: NoteSource,
    },
    /// The open note was deleted (by a peer).
    NoteGone {
        space: String,
        id: String,
    },
    Collections {
        space: String,
        collections: Vec<String>,
    },
    Docs {
        space: String,
        collection: String,
        ids: Vec<String>,
    },
    Doc {
        space: String,
        collection: String,
        id: String,
        /// Pretty-printed JSON; `None` when the document does not exist.
        json: Option<String>,
        /// Whether this is a peer's change to an open document.
        remote: bool,
    },
    /// The answer to `SaveDoc`: `error` says why nothing was stored.
    DocSaved {
        space: String,
        collection: String,
        id: String,
        error: Option<String>,
    },
    History {
        space: String,
        collection: String,
        id: String,
        rows: Vec<weft_core::ChangeInfo>,
    },
    Peers {
        peers: Vec<weft_core::PeerStatus>,
        summary: NetSummary,
    },
    /// Something the user asked for failed; the text says what to do.
    Error(String),
}
