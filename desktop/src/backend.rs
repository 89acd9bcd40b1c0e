//! The backend: one task on the app's own tokio runtime owns the data
//! source (its own `Node`, or a running daemon's API: see `source`). It
//! runs `Command`s from the UI, watches the change feed and the peers, and
//! sends `Update`s back, waking the UI with `request_repaint` each time. The
//! UI thread only ever does `try_recv` and non-blocking sends.

mod attached;
mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use weft_core::{Config, ErrorKind, Node, SpaceState};

use crate::msg::{Command, Mode, NOTES, NoteSource, NoteSummary, NoteText, Update};
use crate::text_merge::merge3;
use attached::Attached;
use source::{Changed, Feed, Source};

/// How often the peers panel is refreshed.
const PEERS_EVERY: Duration = Duration::from_secs(1);
/// Change events within this window are folded into one list refresh, so a
/// burst of synced documents does not reload the lists once per document.
const REFRESH_DELAY: Duration = Duration::from_millis(150);
/// How long a join waits for the inviter's answer before the status line
/// says it is still waiting, like the CLI's default.
const ADMISSION_WAIT: Duration = Duration::from_secs(60);
/// How long a replica locked by a daemon that does not answer yet is
/// waited for, like the CLI's wait.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// Wakes the UI after an update is queued.
pub type Waker = Box<dyn Fn() + Send + Sync>;

/// The UI's end of the backend: a command sender and an update receiver.
/// The backend thread owns the runtime; dropping the handle closes the node.
pub struct BackendHandle {
    commands: mpsc::UnboundedSender<Msg>,
    updates: std_mpsc::Receiver<Update>,
    closed: std_mpsc::Receiver<()>,
}

enum Msg {
    Run(Command),
    Close,
}

impl BackendHandle {
    /// Starts the backend thread, its multi-thread runtime (where the node's
    /// own tasks run) and the backend loop, which opens the node.
    pub fn start(launch: Launch, waker: Waker) -> std::io::Result<Self> {
        let (commands, rx) = mpsc::unbounded_channel();
        let (tx, updates) = std_mpsc::channel();
        let (closed_tx, closed) = std_mpsc::channel();
        let out = Out {
            tx,
            waker: Arc::from(waker),
        };
        std::thread::Builder::new()
            .name("weft-backend".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("weft-node")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        // `block_on` rather than `spawn`: the loop's future
                        // need not be `Send`, only the node's tasks are.
                        runtime.block_on(run(launch, rx, out));
                        runtime.shutdown_timeout(Duration::from_secs(1));
                    }
                    Err(e) => out.send(Update::Fatal(format!(
                        "Cannot start the background runtime: {e}"
                    ))),
                }
                let _ = closed_tx.send(());
            })?;
        Ok(Self {
            commands,
            updates,
            closed,
        })
    }

    /// Queues a command (never blocks).
    pub fn send(&self, command: Command) {
        if self.commands.send(Msg::Run(command)).is_err() {
            tracing::warn!("backend stopped; command dropped");
        }
    }

    /// The next update, if one is waiting.
    pub fn try_recv(&self) -> Option<Update> {
        self.updates.try_recv().ok()
    }
}

impl Drop for BackendHandle {
    fn drop(&mut self) {
        // Close the node so its lock is released and pending writes are
        // stored; bounded so a stuck network never hangs closing the window.
        if self.commands.send(Msg::Close).is_ok() {
            let _ = self.closed.recv_timeout(Duration::from_secs(6));
        }
    }
}

/// Cloned into tasks that answer later (a join waiting for its inviter).
#[derive(Clone)]
struct Out {
    tx: std_mpsc::Sender<Update>,
    waker: Arc<dyn Fn() + Send + Sync>,
}

impl Out {
    fn send(&self, update: Update) {
        if self.tx.send(update).is_ok() {
            (self.waker)();
        }
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) {
        tracing::warn!(error = %e, "{what}");
        self.send(Update::Error(format!("{what}: {e}")));
    }
}

/// What the UI is looking at, so the backend knows which changes to push.
#[derive(Default)]
struct View {
    space: Option<String>,
    note: Option<String>,
    collection: Option<String>,
    doc: Option<(String, String)>,
}

struct Backend {
    source: Source,
    out: Out,
    view: View,
}

/// What the app opens: the daemon serving `daemon_dir` if one runs there,
/// else its own replica described by `config`.
#[derive(Clone, Debug)]
pub struct Launch {
    pub config: Config,
    /// The data dir whose daemon the app attaches to (`None`: never attach).
    pub daemon_dir: Option<PathBuf>,
}

impl From<Config> for Launch {
    /// Attaches to a daemon serving the replica's own data dir, if any.
    fn from(config: Config) -> Self {
        let daemon_dir = config.data_dir.clone();
        Self { config, daemon_dir }
    }
}

/// Attaches to a running daemon, or opens the app's own node. A replica
/// locked by a daemon that does not answer yet (still starting) is retried
/// for a while rather than reported, and never opened a second time.
async fn open(launch: Launch, out: &Out) -> Result<(Source, Mode), String> {
    let started = Instant::now();
    loop {
        if let Some(dir) = &launch.daemon_dir {
            match Attached::discover(dir).await {
                Ok(Some((attached, api))) => {
                    return Ok((Source::Attached(attached), Mode::Attached { api }));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("Cannot attach to the daemon: {e}")),
            }
        }
        match Node::open(launch.config.clone()).await {
            Ok(node) => return Ok((Source::Embedded(node), Mode::Embedded)),
            Err(e) if e.kind() == ErrorKind::Locked && started.elapsed() < LOCK_WAIT => {
                if started.elapsed() < Duration::from_millis(200) {
                    out.send(Update::Error(
                        "The replica is locked by another process; waiting for its daemon to answer…".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("Cannot open the replica: {e}")),
        }
    }
}

async fn run(launch: Launch, mut rx: mpsc::UnboundedReceiver<Msg>, out: Out) {
    let (source, mode) = match open(launch, &out).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            out.send(Update::Fatal(e));
            // Keep answering nothing until the app closes.
            while let Some(Msg::Run(_)) = rx.recv().await {}
            return;
        }
    };
    tracing::info!(title = %mode.title(), "backend started");
    out.send(Update::Mode(mode));
    let ready = match &source {
        Source::Embedded(node) => Ok((node.node_id().to_string(), node.default_space().to_owned())),
        Source::Attached(a) => a.ready().await,
    };
    match ready {
        Ok((node_id, default_space)) => out.send(Update::Ready {
            node_id,
            default_space,
        }),
        Err(e) => {
            out.send(Update::Fatal(format!("The daemon does not answer: {e}")));
            while let Some(Msg::Run(_)) = rx.recv().await {}
            return;
        }
    }
    let (feed_tx, mut feed) = mpsc::unbounded_channel();
    source.spawn_feed(feed_tx);
    let mut backend = Backend {
        source: source.clone(),
        out,
        view: View::default(),
    };
    backend.spaces().await;
    let mut peers_tick = tokio::time::interval(PEERS_EVERY);
    let mut refresh_at: Option<Instant> = None;
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Run(command)) => backend.command(command).await,
                Some(Msg::Close) | None => break,
            },
            item = feed.recv() => match item {
                Some(Feed::Change(changed)) => {
                    backend.change(&changed).await;
                    refresh_at.get_or_insert_with(|| Instant::now() + REFRESH_DELAY);
                }
                Some(Feed::Reload) => {
                    refresh_at.get_or_insert_with(|| Instant::now() + REFRESH_DELAY);
                }
                Some(Feed::Link(down)) => backend.out.send(Update::Link(down)),
                Some(Feed::Moved(api)) => backend.out.send(Update::Mode(Mode::Attached { api })),
                None => break,
            },
            () = sleep_until(refresh_at) => {
                refresh_at = None;
                backend.refresh_lists().await;
            }
            _ = peers_tick.tick() => backend.peers().await,
        }
    }
    drop(feed);
    source.close().await;
    tracing::info!("backend stopped");
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Backend {
    async fn command(&mut self, command: Command) {
        match command {
            Command::ListSpaces => self.spaces().await,
            Command::CreateSpace(name) => match self.source.space_create(name.trim()).await {
                Ok(id) => {
                    self.spaces().await;
                    self.out.send(Update::SpaceAdded(id));
                }
                Err(e) => self.out.error("Could not create the space", e),
            },
            Command::Invite(space) => match self.source.invite(&space).await {
                Ok(token) => self.out.send(Update::Invite { space, token }),
                Err(e) => self.out.error(
                    "Could not issue an invite (only admins of a space can invite)",
                    e,
                ),
            },
            Command::Join(token) => match self.source.join(token.trim()).await {
                Ok(id) => {
                    self.spaces().await;
                    self.out.send(Update::SpaceAdded(id.clone()));
                    self.out.send(admission(id.clone(), SpaceState::Pending));
                    // Waited for in its own task, so the backend keeps
                    // serving the UI meanwhile.
                    let (source, out) = (self.source.clone(), self.out.clone());
                    tokio::spawn(async move {
                        match source.wait_admission(&id, ADMISSION_WAIT).await {
                            Ok(state) => {
                                if let Ok(list) = source.space_list().await {
                                    out.send(Update::Spaces(space_entries(list)));
                                }
                                out.send(admission(id, state));
                            }
                            Err(e) => out.error("Could not learn whether the join was admitted", e),
                        }
                    });
                }
                Err(e) => self.out.error(
                    "Could not join (paste the whole token an admin copied for you)",
                    e,
                ),
            },
            Command::Connect(addr) => match self.source.connect(addr.trim()).await {
                Ok(id) => {
                    self.out.send(Update::Connected(id));
                    self.peers().await;
                }
                Err(e) => self.out.error("Could not connect", e),
            },
            Command::SelectSpace(space) => {
                self.view = View {
                    space: Some(space.clone()),
                    ..View::default()
                };
                self.notes(&space).await;
                self.collections(&space).await;
            }
            Command::CreateNote { space } => self.create_note(&space).await,
            Command::OpenNote { space, id } => {
                self.view.note = Some(id.clone());
                self.send_note(&space, &id, NoteSource::Opened).await;
            }
            Command::SaveNote {
                space,
                id,
                base,
                edited,
            } => self.save_note(&space, &id, &base, edited).await,
            Command::ListDocs { space, collection } => {
                self.view.collection = Some(collection.clone());
                self.docs(&space, &collection).await;
            }
            Command::OpenDoc {
                space,
                collection,
                id,
            } => {
                self.view.doc = Some((collection.clone(), id.clone()));
                self.send_doc(&space, &collection, &id, false).await;
            }
            Command::SaveDoc {
                space,
                collection,
                id,
                json,
            } => {
                let saved = self
                    .source
                    .put(&space, &collection, &id, Value::Object(json))
                    .await;
                if let Err(e) = &saved {
                    tracing::info!(error = %e, "document not saved");
                }
                self.out.send(Update::DocSaved {
                    space,
                    collection,
                    id,
                    error: saved.err(),
                });
            }
            Command::History {
                space,
                collection,
                id,
            } => self.history(space, collection, id).await,
        }
    }

    /// Pushes the open note or document again when someone else changed it.
    async fn change(&mut self, c: &Changed) {
        if !c.foreign || self.view.space.as_deref() != Some(c.space.as_str()) {
            return;
        }
        if c.collection == NOTES && self.view.note.as_deref() == Some(c.id.as_str()) {
            if c.deleted {
                self.out.send(Update::NoteGone {
                    space: c.space.clone(),
                    id: c.id.clone(),
                });
            } else {
                self.send_note(&c.space, &c.id, NoteSource::Remote).await;
            }
        }
        if self
            .view
            .doc
            .as_ref()
            .is_some_and(|(col, id)| *col == c.collection && *id == c.id)
        {
            self.send_doc(&c.space, &c.collection, &c.id, true).await;
        }
    }

    async fn refresh_lists(&mut self) {
        self.spaces().await;
        let Some(space) = self.view.space.clone() else {
            return;
        };
        self.notes(&space).await;
        self.collections(&space).await;
        if let Some(collection) = self.view.collection.clone() {
            self.docs(&space, &collection).await;
        }
    }

    async fn spaces(&self) {
        match self.source.space_list().await {
            Ok(list) => self.out.send(Update::Spaces(space_entries(list))),
            Err(e) => self.out.error("Could not list spaces", e),
        }
    }

    async fn notes(&self, space: &str) {
        match self.source.notes(space).await {
            Ok(rows) => self.out.send(Update::Notes {
                space: space.to_owned(),
                notes: rows
                    .into_iter()
                    .map(|(id, json)| NoteSummary {
                        title: str_field(&json, "title"),
                        updated: json.get("updated").and_then(Value::as_i64).unwrap_or(0),
                        id,
                    })
                    .collect(),
            }),
            Err(e) => self.out.error("Could not list notes", e),
        }
    }

    async fn create_note(&mut self, space: &str) {
        let id = new_id();
        let doc = json!({"title": "", "body": "", "updated": now_ms()});
        match self.source.put(space, NOTES, &id, doc).await {
            Ok(()) => {
                self.notes(space).await;
                self.view.note = Some(id.clone());
                self.out.send(Update::Note {
                    space: space.to_owned(),
                    id,
                    text: NoteText::default(),
                    source: NoteSource::Opened,
                });
            }
            Err(e) => self.out.error("Could not create the note", e),
        }
    }

    async fn read_note(&self, space: &str, id: &str) -> Result<Option<NoteText>, String> {
        Ok(self.source.get(space, NOTES, id).await?.map(|v| NoteText {
            title: str_field(&v, "title"),
            body: str_field(&v, "body"),
        }))
    }

    async fn send_note(&self, space: &str, id: &str, source: NoteSource) {
        match self.read_note(space, id).await {
            Ok(Some(text)) => self.out.send(Update::Note {
                space: space.to_owned(),
                id: id.to_owned(),
                text,
                source,
            }),
            Ok(None) => self.out.send(Update::NoteGone {
                space: space.to_owned(),
                id: id.to_owned(),
            }),
            Err(e) => self.out.error("Could not open the note", e),
        }
    }

    /// Stores an edit made against `base`, first merging in whatever reached
    /// the store since (a peer's typing), so a save never reverts it.
    async fn save_note(&self, space: &str, id: &str, base: &NoteText, edited: NoteText) {
        let current = match self.read_note(space, id).await {
            Ok(Some(text)) => text,
            Ok(None) => base.clone(),
            Err(e) => {
                self.out.error("Could not save the note", e);
                return;
            }
        };
        let merged = NoteText {
            title: merge3(&base.title, &edited.title, &current.title),
            body: merge3(&base.body, &edited.body, &current.body),
        };
        let doc = json!({"title": merged.title, "body": merged.body, "updated": now_ms()});
        match self.source.put(space, NOTES, id, doc).await {
            Ok(()) => self.out.send(Update::Note {
                space: space.to_owned(),
                id: id.to_owned(),
                text: merged,
                source: NoteSource::Saved,
            }),
            Err(e) => self.out.error("Could not save the note", e),
        }
    }

    async fn collections(&self, space: &str) {
        match self.source.collections(space).await {
            Ok(collections) => self.out.send(Update::Collections {
                space: space.to_owned(),
                collections,
            }),
            Err(e) => self.out.error("Could not list collections", e),
        }
    }

    async fn docs(&self, space: &str, collection: &str) {
        match self.source.list_ids(space, collection).await {
            Ok(ids) => self.out.send(Update::Docs {
                space: space.to_owned(),
                collection: collection.to_owned(),
                ids,
            }),
            Err(e) => self.out.error("Could not list documents", e),
        }
    }

    async fn send_doc(&self, space: &str, collection: &str, id: &str, remote: bool) {
        match self.source.get(space, collection, id).await {
            Ok(value) => self.out.send(Update::Doc {
                space: space.to_owned(),
                collection: collection.to_owned(),
                id: id.to_owned(),
                json: value.map(|v| serde_json::to_string_pretty(&v).unwrap_or_default()),
                remote,
            }),
            Err(e) => self.out.error("Could not open the document", e),
        }
    }

    async fn history(&self, space: String, collection: String, id: String) {
        match self.source.history(&space, &collection, &id).await {
            Ok(changes) => self.out.send(Update::History {
                space,
                collection,
                id,
                rows: changes.into_iter().rev().collect(),
            }),
            Err(e) => self.out.error("Could not load the history", e),
        }
    }

    async fn peers(&self) {
        match self.source.net().await {
            Ok((peers, summary)) => self.out.send(Update::Peers { peers, summary }),
            Err(e) => tracing::debug!(error = %e, "peers unavailable"),
        }
    }
}

/// The spaces as the UI lists them: the personal space first, then by
/// name, so the list is stable.
fn space_entries(mut spaces: Vec<weft_core::SpaceInfo>) -> Vec<weft_core::SpaceInfo> {
    spaces.sort_by(|a, b| (!a.default, &a.name).cmp(&(!b.default, &b.name)));
    spaces
}

/// A space state as the CLI spells it, and the refusal's reason.
fn state_parts(state: SpaceState) -> (String, Option<String>) {
    (state.name().to_owned(), state.reason().map(str::to_owned))
}

fn admission(space: String, state: SpaceState) -> Update {
    let (state, reason) = state_parts(state);
    Update::Admission {
        space,
        state,
        reason,
    }
}

fn str_field(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh note id: time-ordered, with random bits so two devices creating
/// notes in the same millisecond do not collide.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    format!("n{:x}-{:08x}", now_ms(), h.finish() as u32)
}
