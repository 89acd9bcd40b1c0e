//! A hostile-peer harness: a real libp2p peer that speaks `/weft/sync/1` at
//! the byte level (with or without the session handshake) against a real
//! `weft daemon` process, whose memory, life and local write latency the
//! tests watch from outside. See `tests/tests/hostile.rs`.

mod frames;
mod peer;
mod target;

pub use frames::{
    decompression_bomb, doc_ack, empty_sync_message, join_claim, nested_keys_reconcile,
    nothing_here, probe,
};
pub use peer::{Conn, HostilePeer, IO_TIMEOUT, SYNC_PROTOCOL, Tally, partial_frame};
pub use target::{Memory, Seed, TARGET_ADDRESS_SPACE, Target, memory_of};
