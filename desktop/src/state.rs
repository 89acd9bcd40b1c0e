//! Everything the UI shows and edits, as plain data. `Update`s from the
//! backend change it in `apply`; the render functions edit it and queue
//! `Command`s in `outbox`, which the app glue sends. Nothing here touches
//! the node, so tests can drive and inspect it directly.

use std::time::{Duration, Instant};

use crate::msg::{Command, Mode, NetSummary, NoteSource, NoteSummary, NoteText, Update};
use crate::text_merge::merge3;

/// Saves wait this long after the last keystroke, so typing is stored in a
/// few commits rather than one per character.
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(300);

/// The main area's tabs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Notes,
    Documents,
    Peers,
}

/// The status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Info(String),
    Error(String),
}

/// A text field's content replaced under the user, for the renderer to move
/// the field's cursor from `old` to the same place in the new text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remap {
    pub title: Option<(String, String)>,
    pub body: Option<(String, String)>,
}

/// The open note.
#[derive(Clone, Debug)]
pub struct NoteEditor {
    pub id: String,
    pub title: String,
    pub body: String,
    /// The stored text the buffers derive from.
    pub base: NoteText,
    /// Text sent in a save not yet answered; the answer supersedes any
    /// remote text that arrives meanwhile.
    pub in_flight: Option<NoteText>,
    /// When the buffers were last edited, while they have unsaved edits.
    pub edited_at: Option<Instant>,
    pub remap: Remap,
    /// Deleted on another device.
    pub gone: bool,
}

impl NoteEditor {
    fn new(id: String, text: NoteText) -> Self {
        Self {
            id,
            title: text.title.clone(),
            body: text.body.clone(),
            base: text,
            in_flight: None,
            edited_at: None,
            remap: Remap::default(),
            gone: false,
        }
    }

    fn buffers(&self) -> NoteText {
        NoteText {
            title: self.title.clone(),
            body: self.body.clone(),
        }
    }

    /// Folds stored text into the buffers: the edit from `from` to `stored`
    /// is merged with the user's edit from `from` to the buffers.
    fn merge_stored(&mut self, from: &NoteText, stored: NoteText) {
        let title = merge3(&from.title, &self.title, &stored.title);
        let body = merge3(&from.body, &self.body, &stored.body);
        remap(&mut self.remap.title, &mut self.title, title);
        remap(&mut self.remap.body, &mut self.body, body);
        self.base = stored;
        if self.buffers() != self.base && self.edited_at.is_none() {
            self.edited_at = Some(Instant::now());
        }
    }

    /// Whether the buffers hold edits the store does not have yet.
    pub fn unsaved(&self) -> bool {
        self.edited_at.is_some() || self.in_flight.is_some()
    }
}

/// Replaces `field` with `new`, recording the move for the cursor. Two merges
/// before the next frame chain into one move from the text the field showed.
fn remap(pending: &mut Option<(String, String)>, field: &mut String, new: String) {
    if *field == new {
        return;
    }
    let old = std::mem::replace(field, new);
    let shown = pending.take().map_or(old, |(shown, _)| shown);
    *pending = Some((shown, field.clone()));
}

/// The open document in the JSON editor.
#[derive(Clone, Debug, Default)]
pub struct DocEditor {
    pub collection: String,
    pub id: String,
    pub text: String,
    /// The text as last loaded or saved.
    pub saved: String,
    /// Why the last save was refused; nothing was stored.
    pub error: Option<String>,
    pub saving: bool,
    /// A peer changed the document while it had local edits.
    pub changed_remotely: bool,
    /// Not stored yet (created in the editor).
    pub is_new: bool,
}

impl DocEditor {
    pub fn dirty(&self) -> bool {
        self.text != self.saved
    }
}

/// The history window.
#[derive(Clone, Debug)]
pub struct HistoryView {
    pub collection: String,
    pub id: String,
    pub rows: Vec<weft_core::ChangeInfo>,
}

#[derive(Default)]
pub struct AppState {
    /// Whose replica this is, once the backend has opened it.
    pub mode: Option<Mode>,
    /// Attached: why the daemon does not answer, while it does not.
    pub link_down: Option<String>,
    pub node_id: Option<String>,
    /// The node failed to open.
    pub fatal: Option<String>,
    pub view: View,
    pub spaces: Vec<weft_core::SpaceInfo>,
    pub space: Option<String>,
    pub new_space_name: String,
    pub join_token: String,
    /// The last invite issued: (space id, token).
    pub invite: Option<(String, String)>,
    pub notes: Vec<NoteSummary>,
    pub note: Option<NoteEditor>,
    pub collections: Vec<String>,
    pub collection: Option<String>,
    pub doc_ids: Vec<String>,
    pub doc: Option<DocEditor>,
    pub new_doc_collection: String,
    pub new_doc_id: String,
    pub peers: Vec<weft_core::PeerStatus>,
    pub net: Option<NetSummary>,
    pub connect_addr: String,
    pub history: Option<HistoryView>,
    pub notice: Option<Notice>,
    /// Commands for the backend, sent after each frame.
    pub outbox: Vec<Command>,
    /// Text to put on the clipboard (done where the egui context is).
    pub copy_request: Option<String>,
    /// Set when a frame changed what it had already drawn, so the app draws
    /// another one.
    pub repaint: bool,
}

impl AppState {
    pub fn send(&mut self, command: Command) {
        self.outbox.push(command);
    }

    pub fn space_name(&self, id: &str) -> String {
        self.spaces
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| short(id), |s| s.name.clone())
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Ready {
                node_id,
                default_space,
            } => {
                self.node_id = Some(node_id);
                if self.space.is_none() {
                    self.select_space(default_space);
                }
            }
            Update::Mode(mode) => self.mode = Some(mode),
            Update::Link(down) => self.link_down = down,
            Update::Fatal(message) => self.fatal = Some(message),
            Update::Spaces(spaces) => self.spaces = spaces,
            Update::SpaceAdded(id) => self.select_space(id),
            Update::Admission {
                space,
                state,
                reason,
            } => self.admission(&space, &state, reason.as_deref()),
            Update::Invite { space, token } => {
                self.copy_request = Some(token.clone());
                self.invite = Some((space, token));
                self.notice = Some(Notice::Info(
                    "Invite token copied to the clipboard: paste it into the other device's \
                     \"Join a space\" field (valid for 7 days)."
                        .into(),
                ));
            }
            Update::Connected(peer) => {
                self.notice = Some(Notice::Info(format!("Connected to {}", short(&peer))));
            }
            Update::Notes { space, notes } if self.is_current(&space) => self.notes = notes,
            Update::Note {
                space,
                id,
                text,
                source,
            } if self.is_current(&space) => self.note_text(id, text, source),
            Update::NoteGone { space, id } if self.is_current(&space) => {
                if let Some(editor) = self.note.as_mut().filter(|e| e.id == id) {
                    editor.gone = true;
                    editor.edited_at = None;
                    editor.in_flight = None;
                }
            }
            Update::Collections { space, collections } if self.is_current(&space) => {
                self.collections = collections;
            }
            Update::Docs {
                space,
                collection,
                ids,
            } if self.is_current(&space) && self.collection.as_ref() == Some(&collection) => {
                self.doc_ids = ids;
            }
            Update::Doc {
                space,
                collection,
                id,
                json,
                remote,
            } if self.is_current(&space) => self.doc_loaded(collection, id, json, remote),
            Update::DocSaved {
                space,
                collection,
                id,
                error,
            } if self.is_current(&space) => {
                if let Some(doc) = self
                    .doc
                    .as_mut()
                    .filter(|d| d.collection == collection && d.id == id)
                {
                    doc.saving = false;
                    match error {
                        Some(e) => doc.error = Some(format!("Not saved: {e}")),
                        None => {
                            doc.saved = doc.text.clone();
                            doc.is_new = false;
                            doc.changed_remotely = false;
                            self.notice = Some(Notice::Info(format!("Saved {collection}/{id}")));
                        }
                    }
                }
            }
            Update::History {
                space,
                collection,
                id,
                rows,
            } if self.is_current(&space) => {
                self.history = Some(HistoryView {
                    collection,
                    id,
                    rows,
                });
            }
            Update::Peers { peers, summary } => {
                self.peers = peers;
                self.net = Some(summary);
            }
            Update::Error(message) => self.notice = Some(Notice::Error(message)),
            // Answers about a space the user has since left.
            Update::Notes { .. }
            | Update::Note { .. }
            | Update::NoteGone { .. }
            | Update::Collections { .. }
            | Update::Docs { .. }
            | Update::Doc { .. }
            | Update::DocSaved { .. }
            | Update::History { .. } => {}
        }
    }

    /// The status line after a join: admitted, refused, or still waiting.
    fn admission(&mut self, space: &str, state: &str, reason: Option<&str>) {
        let name = self.space_name(space);
        self.notice = Some(match (state, reason) {
            ("pending", _) => Notice::Info(format!(
                "Joined {name}: waiting for the inviter to admit this device \
                 (it is admitted once the inviter is online)"
            )),
            (_, Some(reason)) => Notice::Error(format!(
                "Joining {name} was refused: {reason}. Ask an admin of the space for a new invite."
            )),
            (role, None) => Notice::Info(format!("Joined {name}: admitted as {role}")),
        });
    }

    fn is_current(&self, space: &str) -> bool {
        self.space.as_deref() == Some(space)
    }

    fn note_text(&mut self, id: String, text: NoteText, source: NoteSource) {
        match (source, self.note.as_mut().filter(|e| e.id == id)) {
            (NoteSource::Opened, _) => self.note = Some(NoteEditor::new(id, text)),
            (NoteSource::Remote, Some(editor)) => {
                // While a save is out, its answer carries this change too,
                // merged with the saved text; merging it now would apply it twice.
                if editor.in_flight.is_none() {
                    let base = editor.base.clone();
                    editor.merge_stored(&base, text);
                }
            }
            (NoteSource::Saved, Some(editor)) => {
                if let Some(sent) = editor.in_flight.take() {
                    editor.merge_stored(&sent, text);
                }
            }
            (_, None) => {}
        }
    }

    fn doc_loaded(&mut self, collection: String, id: String, json: Option<String>, remote: bool) {
        let text = json.unwrap_or_else(|| "{}".to_owned());
        match self
            .doc
            .as_mut()
            .filter(|d| d.collection == collection && d.id == id)
        {
            Some(doc) if remote && doc.dirty() => doc.changed_remotely = true,
            Some(doc) if remote => {
                doc.text = text.clone();
                doc.saved = text;
            }
            _ if remote => {}
            _ => {
                self.doc = Some(DocEditor {
                    collection,
                    id,
                    saved: text.clone(),
                    text,
                    ..DocEditor::default()
                });
            }
        }
    }

    /// Shows another space, saving the open note first.
    pub fn select_space(&mut self, id: String) {
        self.flush_note();
        self.note = None;
        self.notes.clear();
        self.doc = None;
        self.doc_ids.clear();
        self.collection = None;
        self.collections.clear();
        self.history = None;
        self.space = Some(id.clone());
        self.send(Command::SelectSpace(id));
    }

    pub fn open_note(&mut self, id: String) {
        let Some(space) = self.space.clone() else {
            return;
        };
        self.flush_note();
        self.send(Command::OpenNote { space, id });
    }

    pub fn create_note(&mut self) {
        let Some(space) = self.space.clone() else {
            return;
        };
        self.flush_note();
        self.send(Command::CreateNote { space });
    }

    /// Records a keystroke in the note editor.
    pub fn note_edited(&mut self) {
        if let Some(editor) = &mut self.note {
            editor.edited_at = Some(Instant::now());
        }
    }

    /// Saves the open note once typing paused. Returns how long until it
    /// needs another look, so the app can ask for a repaint then.
    pub fn tick(&mut self, now: Instant) -> Option<Duration> {
        let editor = self.note.as_ref()?;
        let edited = editor.edited_at?;
        if editor.in_flight.is_some() {
            // The answer wakes the UI; check again then.
            return None;
        }
        let due = edited + SAVE_DEBOUNCE;
        if now < due {
            return Some(due - now);
        }
        self.flush_note();
        None
    }

    /// Sends the open note's unsaved edits now.
    pub fn flush_note(&mut self) {
        let Some(space) = self.space.clone() else {
            return;
        };
        let Some(editor) = self.note.as_mut() else {
            return;
        };
        if editor.edited_at.is_none() || editor.gone {
            return;
        }
        let edited = editor.buffers();
        // A save already out lands first, so the store will hold its text.
        let base = editor
            .in_flight
            .clone()
            .unwrap_or_else(|| editor.base.clone());
        editor.edited_at = None;
        editor.in_flight = Some(edited.clone());
        let id = editor.id.clone();
        self.send(Command::SaveNote {
            space,
            id,
            base,
            edited,
        });
    }

    /// Shows the documents of a collection.
    pub fn select_collection(&mut self, collection: String) {
        let Some(space) = self.space.clone() else {
            return;
        };
        self.doc = None;
        self.doc_ids.clear();
        self.collection = Some(collection.clone());
        self.new_doc_collection = collection.clone();
        self.send(Command::ListDocs { space, collection });
    }

    pub fn open_doc(&mut self, id: String) {
        let (Some(space), Some(collection)) = (self.space.clone(), self.collection.clone()) else {
            return;
        };
        self.send(Command::OpenDoc {
            space,
            collection,
            id,
        });
    }

    /// Starts a document in the editor; it is stored on the first save.
    pub fn new_doc(&mut self) {
        let collection = self.new_doc_collection.trim().to_owned();
        let id = std::mem::take(&mut self.new_doc_id).trim().to_owned();
        self.doc = Some(DocEditor {
            collection,
            id,
            is_new: true,
            ..DocEditor::default()
        });
    }

    /// Validates the JSON editor's text and queues the save; on invalid
    /// JSON it records the error and stores nothing.
    pub fn save_doc(&mut self) {
        let Some(space) = self.space.clone() else {
            return;
        };
        let Some(doc) = self.doc.as_mut() else {
            return;
        };
        match weft_core::parse_object(&doc.text) {
            Ok(json) => {
                doc.error = None;
                doc.saving = true;
                let (collection, id) = (doc.collection.clone(), doc.id.clone());
                self.send(Command::SaveDoc {
                    space,
                    collection,
                    id,
                    json,
                });
            }
            Err(e) => {
                doc.error = Some(format!("Not saved: {e}. Fix it and save again."));
                self.repaint = true;
            }
        }
    }
}

/// The first characters of a long id, for display.
pub fn short(id: &str) -> String {
    if id.chars().count() <= 12 {
        id.to_owned()
    } else {
        let head: String = id.chars().take(6).collect();
        let tail: String = id
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}…{tail}")
    }
}

#[cfg(test)]
mod tests;
