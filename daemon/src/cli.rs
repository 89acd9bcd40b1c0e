//! The `weft` command line. Names and arguments are a contract that scripts
//! depend on; `--json` output shapes are the API's (see `model.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: a peer-to-peer, local-first document database",
    long_about = "Weft keeps a full replica of your documents in SQLite on this device and merges \
                  them with peers it meets (Automerge CRDTs over libp2p).\n\n\
                  While `weft daemon` runs for a data dir, the other commands go through its API; \
                  otherwise they open the replica directly.",
    after_help = "Exit status: 0 on success, 1 on failure, 2 on bad usage, 3 when a document or space does not exist, \
                  4 when the replica is in use, 5 when a join was refused."
)]
pub struct Cli {
    /// The replica's directory [default: the platform data dir, e.g. ~/.local/share/weft]
    #[arg(long, global = true, env = "WEFT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Space name or id [default: this device's default space]
    #[arg(long, global = true, value_name = "SPACE")]
    pub space: Option<String>,

    /// Machine-readable JSON output
    #[arg(long, global = true)]
    pub json: bool,

    /// Config file [default: weft.toml in the platform config dir]
    #[arg(long, global = true, env = "WEFT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node in the foreground: sync with peers and serve the local API
    Daemon(DaemonArgs),
    /// Print this node's id and listen addresses
    Id,
    /// Create, list, invite to, join, revoke from, list members of and leave spaces
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Create or replace a document (JSON may be '-' to read stdin)
    Put {
        collection: String,
        id: String,
        #[arg(value_name = "JSON")]
        doc: String,
    },
    /// Apply an RFC 7396 merge patch to a document ('-' reads stdin)
    Patch {
        collection: String,
        id: String,
        #[arg(value_name = "JSON")]
        doc: String,
    },
    /// Print a document; exits 3 if it does not exist
    Get {
        collection: String,
        id: String,
        /// The document as it was at these heads (comma-separated, as `weft history` prints them)
        #[arg(long, value_name = "HEADS")]
        at: Option<String>,
    },
    /// Delete a document
    Delete { collection: String, id: String },
    /// List documents of a collection
    List {
        collection: String,
        /// FIELD=VALUE (also !=, <, <=, >, >=); may repeat
        #[arg(long = "where", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
        /// Sort by this field
        #[arg(long, value_name = "FIELD")]
        order: Option<String>,
        /// Sort largest first
        #[arg(long)]
        desc: bool,
        /// At most N documents
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Run a read-only SQL statement (table `documents`: space, collection, id, json)
    Sql { statement: String },
    /// Print a document's change history
    History { collection: String, id: String },
    /// Print the automerge-repo URL of a document (automerge:<id>)
    Url { collection: String, id: String },
    /// Stream change events of --space (or of every space with --all)
    Watch {
        collection: Option<String>,
        /// Every space, not only --space
        #[arg(long, conflicts_with = "space")]
        all: bool,
    },
    /// Import documents into --space from NDJSON, one {"collection", "id", "doc"} per line ('-' reads stdin)
    Import {
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// Print --space's documents as NDJSON, one {"collection", "id", "doc"} per line
    Export {
        /// Only this collection [default: every collection]
        collection: Option<String>,
    },
    /// List known peers and sync progress
    Peers,
    /// Dial a peer (a multiaddr ending in /p2p/NODE_ID)
    Connect { multiaddr: String },
    /// Write a consistent backup of the replica (and this device's key) to FILE, also while the daemon runs
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Replace FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Replace the replica in --data-dir by a backup; no process (daemon) may hold it
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Replace a replica (or another device's key) already in --data-dir
        #[arg(long)]
        force: bool,
    },
    /// Run the integrity check on the replica; exits 1 if it is damaged
    Check,
    /// Create indexes on JSON fields
    #[command(subcommand)]
    Index(IndexCommand),
    /// Print documents, peers and sync progress
    Status {
        /// Wait until sync with every connected peer is idle, showing progress
        #[arg(long)]
        wait_synced: bool,
        /// Give up waiting after this many seconds [default: 60; config `status_timeout`]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Create a space with this device as admin; prints its id
    Create { name: String },
    /// List the spaces this device is in
    List,
    /// Make an invite token for --space (admins only); prints the token
    Invite {
        /// reader, writer or admin [default: writer; config `invite_role`]
        #[arg(long)]
        role: Option<String>,
        /// How long the token works: 90s, 30m, 12h, 7d, 2w [default: 7d; config `invite_expires`]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Only this node may use the token
        #[arg(long, value_name = "NODE_ID")]
        node: Option<String>,
    },
    /// Join a space with an invite token; waits for the inviter to admit this device, then prints the space id
    Join {
        token: String,
        /// Return at once instead of waiting for the inviter to admit or refuse this device
        #[arg(long, conflicts_with = "timeout")]
        no_wait: bool,
        /// Give up waiting after this many seconds; the space stays joined, pending [default: 60; config `status_timeout`]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
    },
    /// Remove a member from --space (admins only)
    Revoke { node_id: String },
    /// List the members of --space and their roles
    Members,
    /// Leave --space: stop syncing it and delete this device's copy of it (peers keep theirs)
    Leave,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Index a JSON field (dotted path, e.g. `meta.due`) so `list --where/--order` on it is fast; idempotent
    Create { field: String },
}

#[derive(Debug, Clone, Default, Args)]
pub struct DaemonArgs {
    /// Listen on this multiaddr (repeatable) [default: all interfaces, random TCP and QUIC ports]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Keep in touch with this peer (a multiaddr ending in /p2p/NODE_ID; repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<String>,
    /// Do not discover peers on the local network
    #[arg(long)]
    pub no_mdns: bool,
    /// Serve the local API here [default: 127.0.0.1:0, a random port written to daemon.json]
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<String>,
    /// Let web pages of this origin call the API (repeatable; loopback origins always may)
    #[arg(
        long,
        value_name = "ORIGIN",
        env = "WEFT_API_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub api_allowed_origin: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn documented_invocations_parse() {
        for line in [
            "weft daemon --listen /ip4/127.0.0.1/tcp/0 --peer /ip4/1.2.3.4/tcp/1/p2p/x --no-mdns --api 127.0.0.1:0",
            "weft daemon --api-allowed-origin https://app.example.com --api-allowed-origin http://10.0.0.5:3000",
            "weft --json id",
            "weft space create team",
            "weft space list",
            "weft --space team space invite --role reader --expires 2h",
            "weft space join weft-invite-abc",
            "weft space join weft-invite-abc --no-wait",
            "weft --json space join weft-invite-abc --timeout 30",
            "weft space revoke 12D3KooWabc",
            "weft put notes a {\"x\":1}",
            "weft patch notes a -",
            "weft get notes a --json",
            "weft delete notes a",
            "weft list notes --where done=false --where n>3 --order n --limit 5",
            "weft sql SELECT",
            "weft history notes a",
            "weft url notes a",
            "weft watch",
            "weft watch notes",
            "weft watch --all",
            "weft import docs.ndjson",
            "weft --space team import -",
            "weft export",
            "weft export notes --space team",
            "weft peers",
            "weft connect /ip4/127.0.0.1/tcp/1/p2p/x",
            "weft status --wait-synced --timeout 30",
            "weft backup /tmp/w.backup --force",
            "weft --data-dir /tmp/d restore /tmp/w.backup --force",
            "weft check",
            "weft index create meta.due",
            "weft --space team space members",
            "weft --space team space leave",
            "weft get notes a --at abc,def",
        ] {
            let args = line.split(' ');
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn join_waits_unless_told_not_to() {
        let parse = |line: &str| match Cli::try_parse_from(line.split(' ')).map(|c| c.command) {
            Ok(Command::Space(SpaceCommand::Join {
                token,
                no_wait,
                timeout,
            })) => (token, no_wait, timeout),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(parse("weft space join T"), ("T".into(), false, None));
        assert_eq!(
            parse("weft space join T --no-wait"),
            ("T".into(), true, None)
        );
        assert_eq!(
            parse("weft space join T --timeout 2.5"),
            ("T".into(), false, Some(2.5))
        );
        // Waiting at most N seconds without waiting at all makes no sense.
        assert!(Cli::try_parse_from("weft space join T --no-wait --timeout 3".split(' ')).is_err());
    }
}
