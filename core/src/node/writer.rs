//! The writer actor: one task owning the documents ([`Docs`]), the sync
//! host ([`SyncHost`]) and the spaces ([`Spaces`]). It takes every queued
//! command at once (group commit), dispatches each to the parts, and
//! commits the group in one transaction.

use automerge::ChangeHash;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::docs::{Docs, Precondition, Write, WriteOutcome};
use super::external::{ExternalCommand, external_sync};
use super::replication::{SyncHost, TICK_MS};
use super::spaces::{SpaceCommand, Spaces};
use crate::auth::Role;
use crate::doc::{ChangeInfo, DocError};
use crate::error::{Error, Result};
use crate::key::DocKey;
use crate::store::{ProcessLock, StoreError};
use crate::sync::Input;

/// Most commands folded into one group commit.
const MAX_GROUP: usize = 256;

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Command {
    Write {
        writes: Vec<(Write, Precondition)>,
        reply: Reply<Vec<WriteOutcome>>,
    },
    History {
        key: DocKey,
        reply: Reply<Vec<ChangeInfo>>,
    },
    GetAt {
        key: DocKey,
        heads: Vec<ChangeHash>,
        reply: Reply<Option<Value>>,
    },
    CreateIndex {
        field: String,
        literal: String,
        name: String,
        reply: Reply<()>,
    },
    Peers(Reply<Vec<super::PeerStatus>>),
    PauseNetwork(Reply<()>),
    ResumeNetwork(Reply<()>),
    Space(SpaceCommand),
    External(ExternalCommand),
    Close(oneshot::Sender<()>),
    /// Tests: run this on the actor (inspect it, inject faults).
    #[cfg(test)]
    Test(Box<dyn FnOnce(&mut Actor) + Send>),
}

pub(crate) struct Actor {
    rx: mpsc::Receiver<Command>,
    // The parts are visible to the node's tests, which inspect them.
    pub(super) docs: Docs,
    pub(super) sync: SyncHost,
    pub(super) spaces: Spaces,
    lock: ProcessLock,
}

impl Actor {
    /// The actor, with the spaces' view published before anyone reads it.
    pub(crate) fn new(
        rx: mpsc::Receiver<Command>,
        mut docs: Docs,
        sync: SyncHost,
        mut spaces: Spaces,
        lock: ProcessLock,
    ) -> Self {
        spaces.publish(&mut docs);
        Self {
            rx,
            docs,
            sync,
            spaces,
            lock,
        }
    }

    /// Runs until `Close` or until every handle is gone: commands from
    /// handles, events from the network and a sync timer, one at a time.
    pub(crate) async fn run(mut self) {
        let mut close = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(net) = self.sync.net() {
            let addrs = self.spaces.waiting_inviters(&mut self.docs);
            if !addrs.is_empty() {
                tracing::info!(
                    addresses = addrs.len(),
                    "dialing the inviters of joins still waiting"
                );
                net.keep(addrs);
            }
        }
        while close.is_none() {
            let (docs, spaces) = (&mut self.docs, &mut self.spaces);
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(first) => close = self.commands(first).await,
                    None => break,
                },
                Some(event) = self.sync.next_event() => {
                    self.sync.net_events(docs, spaces, event).await;
                }
                _ = tick.tick() => self.sync.tick(docs, spaces).await,
            }
            // Tell peers about everything committed in this round.
            self.sync.announce(&mut self.docs, &mut self.spaces).await;
            self.round_done();
        }
        self.sync.shutdown().await;
        let mut store = self.docs.into_store();
        if let Err(e) = store.checkpoint() {
            tracing::warn!(error = %e, "checkpoint on close failed");
        }
        if let Err(e) = store.close() {
            tracing::warn!(error = %e, "closing the database failed");
        }
        // Release the replica before answering, so the caller may reopen it
        // as soon as `close` returns.
        drop(self.lock);
        tracing::debug!("writer stopped");
        if let Some(reply) = close {
            let _ = reply.send(());
        }
    }

    /// Publishes what the round changed: the spaces' view first, so a
    /// change event or progress never points at a view not yet updated.
    fn round_done(&mut self) {
        self.spaces.publish(&mut self.docs);
        self.docs.send_events();
        self.sync.publish();
    }

    /// Commits the group, then publishes; whether the rows were stored.
    fn flush(&mut self) -> bool {
        let stored = self.sync.flush(&mut self.docs);
        self.round_done();
        stored
    }

    /// Handles a group of queued commands; returns the reply channel of a
    /// `Close` among them.
    async fn commands(&mut self, first: Command) -> Option<oneshot::Sender<()>> {
        let mut close = None;
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match self.rx.try_recv() {
                Ok(cmd) => group.push(cmd),
                Err(_) => break,
            }
        }
        let keys: Vec<DocKey> = group
            .iter()
            .flat_map(|c| match c {
                Command::Write { writes, .. } => {
                    writes.iter().map(|(w, _)| w.key()).cloned().collect()
                }
                Command::External(e) => vec![e.key.clone()],
                _ => Vec::new(),
            })
            .collect();
        self.docs.prefetch(keys);
        for cmd in group {
            match cmd {
                Command::Write { writes, reply } => self.write(writes, reply),
                Command::External(cmd) => external_sync(&mut self.docs, &mut self.spaces, cmd),
                Command::Close(reply) => close = Some(reply),
                Command::Peers(reply) => {
                    // Nothing stored is read: no need to commit first.
                    let _ = reply.send(Ok(self.sync.peer_statuses().await));
                }
                other => {
                    // Reads see committed state only.
                    self.flush();
                    self.serve(other).await;
                }
            }
        }
        self.flush();
        self.docs.end_prefetch();
        close
    }

    async fn serve(&mut self, cmd: Command) {
        let docs = &mut self.docs;
        match cmd {
            Command::History { key, reply } => {
                let r = docs
                    .clean_doc(&key)
                    .and_then(|()| docs.guarded(&key, |d| d.clean(&key).history()));
                let _ = reply.send(r);
            }
            Command::GetAt { key, heads, reply } => {
                let r = docs
                    .clean_doc(&key)
                    .and_then(|()| docs.guarded(&key, |d| d.clean(&key).json_at(&heads)))
                    .and_then(|r| {
                        r.map(|j| j.map(Value::Object)).map_err(|e| match e {
                            DocError::UnknownHeads => Error::UnknownHeads(key.to_string()),
                            e => e.into(),
                        })
                    });
                let _ = reply.send(r);
            }
            Command::CreateIndex {
                field,
                literal,
                name,
                reply,
            } => {
                let r = docs.store().create_index(&field, &literal, &name);
                let _ = reply.send(r.map_err(Error::from));
            }
            Command::PauseNetwork(reply) => {
                self.sync.pause_network(docs, &mut self.spaces).await;
                let _ = reply.send(Ok(()));
            }
            Command::ResumeNetwork(reply) => {
                let key = self.spaces.signing().to_bytes();
                let _ = reply.send(self.sync.resume_network(key));
            }
            Command::Space(cmd) => self.space(cmd).await,
            #[cfg(test)]
            Command::Test(f) => f(self),
            Command::Write { .. }
            | Command::External(_)
            | Command::Peers(_)
            | Command::Close(_) => {
                unreachable!("handled by commands")
            }
        }
    }

    /// Runs a space command; its writes are committed before it answers,
    /// and before peers are offered a space whose log entry was made.
    async fn space(&mut self, cmd: SpaceCommand) {
        match cmd {
            SpaceCommand::Create {
                name,
                default,
                reply,
            } => {
                let r = self.spaces.create(&mut self.docs, &name, default);
                let r = self.committed(r);
                if let Ok(id) = &r {
                    self.offer(id.to_string()).await;
                }
                let _ = reply.send(r);
            }
            SpaceCommand::Invite { request, reply } => {
                let r = self.spaces.invite(&mut self.docs, request);
                let _ = reply.send(self.committed(r));
            }
            SpaceCommand::Join { token, reply } => {
                let r = self.spaces.join(&mut self.docs, &token);
                let r = self.committed(r);
                if let Ok((id, _)) = &r {
                    self.offer(id.to_string()).await;
                }
                let _ = reply.send(r);
            }
            SpaceCommand::Revoke { space, node, reply } => {
                let r = self.spaces.revoke(&mut self.docs, &space, node);
                let _ = reply.send(self.committed(r));
            }
            SpaceCommand::Leave { space, reply } => {
                let r = self.leave(space).await;
                let _ = reply.send(r);
            }
        }
    }

    /// Leaves a space: its sessions end first, so nothing of it is sent or
    /// taken while it goes; then every row of it goes in one transaction.
    /// Returns how many documents were removed.
    async fn leave(&mut self, space: String) -> Result<u64> {
        self.spaces.check_leave(&space)?;
        let (docs, spaces) = (&mut self.docs, &mut self.spaces);
        self.sync
            .drive(docs, spaces, Input::Withdraw(space.clone()))
            .await;
        // What the group staged (the space's documents included) is stored
        // first, so nothing of the space is written back after it goes.
        self.flush();
        match self.docs.store().delete_space(&space) {
            Ok(removed) => {
                // After the commit: a reader filling the JSON cache from
                // before it is turned away by the epoch this bumps.
                self.docs.forget_space(&space);
                self.spaces.forget(&space);
                // Published before the answer, as a join's state is.
                self.round_done();
                tracing::info!(space, documents = removed, "left the space");
                Ok(removed)
            }
            Err(e) => {
                // Still held: offered again, as before.
                self.offer(space).await;
                Err(e.into())
            }
        }
    }

    /// Names a space to peers once its log entry is stored.
    async fn offer(&mut self, space: String) {
        let (docs, spaces) = (&mut self.docs, &mut self.spaces);
        self.sync.drive(docs, spaces, Input::Offer(space)).await;
        // What the offer staged (sync states) commits with the round.
        self.flush();
    }

    /// A space command's result once its membership entries are stored: a
    /// failed commit is the command's failure, whatever it returned.
    fn committed<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(_) if !self.flush() => Err(Error::Store(StoreError::WriteFailed(
                "storing the membership log failed".into(),
            ))),
            r => r,
        }
    }

    /// Applies one command's writes. All or nothing: on error its documents
    /// are dropped from memory (reloaded from the store later) and its rows
    /// discarded.
    fn write(&mut self, writes: Vec<(Write, Precondition)>, reply: Reply<Vec<WriteOutcome>>) {
        let mark = self.docs.mark();
        let mut heads = Vec::with_capacity(writes.len());
        let mut result = Ok(());
        for (i, (op, precondition)) in writes.iter().enumerate() {
            let applied = self
                .spaces
                .require(&mut self.docs, op.key().space(), Role::Writer)
                .and_then(|()| self.docs.apply(op, precondition));
            match applied {
                Ok(h) => heads.push(h),
                Err(e) => {
                    result = Err(e.in_batch(i, op.key()));
                    break;
                }
            }
        }
        match result {
            Ok(()) => self.docs.on_commit(Box::new(move |stored| {
                let _ = reply.send(
                    stored
                        .map(|()| heads)
                        .map_err(|e| Error::Store(StoreError::WriteFailed(e))),
                );
            })),
            Err(e) => {
                self.docs
                    .discard(mark, writes.iter().map(|(w, _)| w.key().clone()));
                // Earlier commands' rows may touch the documents just dropped:
                // store them now so a reload sees them.
                self.flush();
                let _ = reply.send(Err(e));
            }
        }
    }
}
