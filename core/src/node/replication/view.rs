//! The engine's window on the writer actor's documents and spaces for one
//! input: what [`SyncHost::drive`](super::SyncHost::drive) read beforehand.

use std::collections::HashMap;

use crate::auth::Role;
use crate::doc::Document;
use crate::identity::NodeId;
use crate::key::DocKey;
use crate::node::docs::Docs;
use crate::node::spaces::Spaces;
use crate::sync::wire::Item;
use crate::sync::{Admission, Replica};

pub(super) struct View<'a> {
    pub(super) docs: &'a mut Docs,
    pub(super) spaces: &'a mut Spaces,
    pub(super) items: &'a HashMap<String, Vec<Item>>,
    pub(super) states: &'a mut HashMap<(NodeId, DocKey), Vec<u8>>,
    pub(super) saved: &'a mut HashMap<DocKey, Vec<u8>>,
}

impl Replica for View<'_> {
    fn items(&mut self, space: &str) -> Vec<Item> {
        self.items.get(space).cloned().unwrap_or_default()
    }

    fn doc(&mut self, key: &DocKey) -> &mut Document {
        self.docs.entry(key)
    }

    fn saved(&mut self, key: &DocKey) -> Option<Vec<u8>> {
        self.saved.remove(key)
    }

    fn sync_state(&mut self, peer: NodeId, key: &DocKey) -> Option<Vec<u8>> {
        self.states.remove(&(peer, key.clone()))
    }

    fn role(&mut self, space: &str, node: NodeId) -> Option<Role> {
        self.spaces.role(space, node)
    }

    fn proof(&mut self, space: &str) -> Vec<Vec<u8>> {
        self.spaces.proof(self.docs, space)
    }

    fn admit(&mut self, space: &str, node: NodeId, proof: &[Vec<u8>]) -> Admission {
        self.spaces.admit(self.docs, space, node, proof)
    }
}
