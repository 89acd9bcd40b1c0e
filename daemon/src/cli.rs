//! The `weft` command line. Names and arguments are a contract that scripts
//! depend on; `--json` output shapes are the API's (see `model.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: a peer-to-peer, local-first document database",
    long_about = "Weft keeps a full replica of your documents in SQLite on this device and merges \
                  them with peers it meets (Automerge CRDTs over libp2p).\n\n\
                  While `weft daemon` runs for a data dir, the other commands go through its API; \
                  otherwise they open the replica directly.",
    after_help = "Examples:\n  \
                  weft daemon &                      run the node (or install daemon/dist/weft.service)\n  \
                  weft put notes n1 '{\"title\":\"hi\"}'\n  \
                  weft list notes --where done=false\n  \
                  weft --json status\n  \
                  weft completion bash > ~/.local/share/bash-completion/completions/weft\n\n\
                  Exit status: 0 on success, 1 on failure, 2 on bad usage, 3 when a document or space does not exist, \
                  4 when the replica is in use, 5 when a join was refused."
)]
pub struct Cli {
    /// The replica's directory [default: the platform data dir, e.g. ~/.local/share/weft]
    #[arg(long, global = true, env = "WEFT_DATA_DIR", value_name = "DIR", help_heading = GLOBAL)]
    pub data_dir: Option<PathBuf>,

    /// Space name or id [default: this device's default space]
    #[arg(long, global = true, value_name = "SPACE", help_heading = GLOBAL)]
    pub space: Option<String>,

    /// Machine-readable JSON output
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Config file [default: weft.toml in the platform config dir]
    #[arg(long, global = true, env = "WEFT_CONFIG", value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The heading the options every command takes are listed under.
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node in the foreground: sync with peers and serve the local API
    /// (`weft daemon stop` stops it)
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  \
                      weft daemon\n  \
                      weft daemon --listen /ip4/0.0.0.0/tcp/4001 --peer /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...\n  \
                      weft daemon --log-format json 2>> weft.log\n  \
                      weft daemon stop"
    )]
    Daemon(DaemonArgs),
    /// Print this node's id and listen addresses
    Id,
    /// Create, list, invite to, join, revoke from, list members of and leave spaces
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Create or replace a document (JSON may be '-' to read stdin)
    #[command(after_help = "Examples:\n  \
                            weft put notes n1 '{\"title\":\"hi\",\"done\":false}'\n  \
                            echo '{\"n\":1}' | weft --space team put notes n2 -")]
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
    #[command(after_help = "Examples:\n  \
                            weft list notes\n  \
                            weft list notes --where done=false --where 'n>3' --order n --desc --limit 10\n  \
                            weft --json list notes")]
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
    /// Run a read-only SQL statement over every space (view `documents`: space, collection, id, json)
    // No statement as an example: front ends hold no SQL text (.ci/layers);
    // the README and docs/CLI.md have examples.
    #[command(
        after_help = "The statement sees the live documents of every space; --space is refused: \
                            filter on the view's `space` column instead (WHERE space = 'SPACE_ID'). \
                            Results: at most 100,000 rows."
    )]
    Sql { statement: String },
    /// Print a document's change history
    History { collection: String, id: String },
    /// Print the automerge-repo URL of a document (automerge:<id>)
    Url { collection: String, id: String },
    /// Stream change events of --space (or of every space with --all)
    #[command(after_help = "Examples:\n  \
                            weft watch notes\n  \
                            weft --json watch --all | jq .id")]
    Watch {
        collection: Option<String>,
        /// Every space, not only --space
        #[arg(long, conflicts_with = "space")]
        all: bool,
        /// First print the latest change of every document changed after
        /// this sequence number (0: all), then go on live
        #[arg(long, value_name = "SEQ")]
        since: Option<u64>,
        /// Put each change's document in the line (null when deleted)
        #[arg(long)]
        include_docs: bool,
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
    /// Print the version, API address, data dir, uptime, documents, peers and sync progress
    #[command(after_help = "Examples:\n  \
                            weft status\n  \
                            weft status --wait-synced --timeout 5m\n  \
                            weft --json status")]
    Status {
        /// Wait until sync with every connected peer is idle, showing progress
        #[arg(long)]
        wait_synced: bool,
        /// Give up waiting after this long: seconds or 90s, 5m, 1h; at most a day [default: 60; config `status_timeout`]
        #[arg(long, value_name = "SECONDS", value_parser = timeout_arg)]
        timeout: Option<f64>,
    },
    /// Print a shell completion script (bash, zsh or fish) to stdout
    #[command(after_help = "Examples:\n  \
                            weft completion bash > ~/.local/share/bash-completion/completions/weft\n  \
                            weft completion zsh > ~/.zfunc/_weft    # with fpath+=~/.zfunc before compinit\n  \
                            weft completion fish > ~/.config/fish/completions/weft.fish")]
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) of weft or of one of its commands to stdout
    #[command(after_help = "Examples:\n  \
                            weft man | man -l -\n  \
                            weft man > ~/.local/share/man/man1/weft.1\n  \
                            weft man space invite > ~/.local/share/man/man1/weft-space-invite.1")]
    Man {
        /// A command (and subcommand) whose page to print, e.g. `space invite`
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// The shells `weft completion` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// A member's role, as `--role` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Reads the space's documents
    Reader,
    /// Reads and writes them
    Writer,
    /// Writes, and invites and revokes members
    Admin,
}

impl Role {
    /// The API's name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// `--expires`: checked here so a bad value is a usage error (exit 2); the
/// API takes the text.
fn expires_arg(text: &str) -> Result<String, String> {
    crate::duration::parse_duration(text).map(|_| text.trim().to_owned())
}

/// `--timeout`: seconds or a duration, up to a day.
fn timeout_arg(text: &str) -> Result<f64, String> {
    crate::duration::parse_timeout(text)
}

#[derive(Debug, Subcommand)]
pub enum SpaceCommand {
    /// Create a space with this device as admin; prints its id
    Create { name: String },
    /// List the spaces this device is in
    List,
    /// Make an invite token for --space (admins only); prints the token
    #[command(after_help = "Examples:\n  \
                            weft --space team space invite\n  \
                            weft --space team space invite --role reader --expires 2h\n  \
                            weft --space team space invite --node 12D3KooW...   # only that device may use it")]
    Invite {
        /// The role the token grants [default: writer; config `invite_role`]
        #[arg(long, value_enum)]
        role: Option<Role>,
        /// How long the token works: 90s, 30m, 12h, 7d, 2w (at most 100 years) [default: 7d; config `invite_expires`]
        #[arg(long, value_name = "DURATION", value_parser = expires_arg)]
        expires: Option<String>,
        /// Only this node may use the token
        #[arg(long, value_name = "NODE_ID")]
        node: Option<String>,
    },
    /// Join a space with an invite token; waits for the inviter to admit this device, then prints the space id
    #[command(after_help = "Examples:\n  \
                            weft space join weft-invite-...\n  \
                            weft space join weft-invite-... --timeout 10m\n  \
                            weft space join weft-invite-... --no-wait")]
    Join {
        token: String,
        /// Return at once instead of waiting for the inviter to admit or refuse this device
        #[arg(long, conflicts_with = "timeout")]
        no_wait: bool,
        /// Give up waiting after this long (seconds or 90s, 5m, 1h; at most a day); the space stays joined, pending [default: 60; config `status_timeout`]
        #[arg(long, value_name = "SECONDS", value_parser = timeout_arg)]
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
    #[command(subcommand)]
    pub action: Option<DaemonAction>,
    /// Log format on stderr [default: text; config `log_format`]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
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

/// What `weft daemon` does instead of running the node.
#[derive(Debug, Clone, Subcommand)]
pub enum DaemonAction {
    /// Stop the daemon of the data dir cleanly and wait until it exited
    #[command(
        after_help = "Exit status: 0 once the daemon exited, 3 if none runs for the data dir, \
                            1 if it did not exit within --timeout."
    )]
    Stop {
        /// Give up waiting after this long: seconds or 90s, 5m; at most a day [default: 30]
        #[arg(long, value_name = "SECONDS", value_parser = timeout_arg)]
        timeout: Option<f64>,
    },
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
            "weft status --wait-synced --timeout 5m",
            "weft daemon stop",
            "weft daemon stop --timeout 10",
            "weft daemon --log-format json",
            "weft --space team space invite --role admin --expires 2w",
            "weft completion bash",
            "weft completion zsh",
            "weft completion fish",
            "weft man",
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

    #[test]
    fn daemon_stop_parses_beside_the_daemon_flags() {
        let daemon = |line: &str| match Cli::try_parse_from(line.split(' ')).map(|c| c.command) {
            Ok(Command::Daemon(args)) => args,
            other => panic!("{line}: {other:?}"),
        };
        let stop = daemon("weft --data-dir /d daemon stop --timeout 5");
        assert!(matches!(stop.action, Some(DaemonAction::Stop { timeout: Some(t) }) if t == 5.0));
        let run = daemon("weft daemon --listen /ip4/127.0.0.1/tcp/0 --no-mdns --log-format json");
        assert!(run.action.is_none());
        assert_eq!(run.log_format, Some(LogFormat::Json));
        assert_eq!(run.listen, ["/ip4/127.0.0.1/tcp/0"]);
        // Running flags make no sense with `stop`.
        assert!(Cli::try_parse_from("weft daemon --no-mdns stop".split(' ')).is_err());
    }

    #[test]
    fn bad_roles_durations_and_formats_are_usage_errors_naming_what_is_allowed() {
        for (line, allowed) in [
            ("weft space invite --role owner", "reader, writer, admin"),
            ("weft space invite --expires 3y", "s, m, h, d or w"),
            ("weft space invite --expires 0", "more than 0"),
            ("weft space join T --timeout soon", "90s, 5m, 1h"),
            ("weft status --timeout=-1", "seconds"),
            ("weft status --timeout 2d", "a day"),
            ("weft daemon stop --timeout x", "seconds"),
            ("weft daemon --log-format xml", "text, json"),
            ("weft completion powershell", "bash, zsh, fish"),
        ] {
            let err = Cli::try_parse_from(line.split(' ')).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line}");
            let text = err.to_string();
            assert!(text.contains(allowed), "{line}: {text}");
        }
        let role = |line: &str| match Cli::try_parse_from(line.split(' ')).map(|c| c.command) {
            Ok(Command::Space(SpaceCommand::Invite { role, expires, .. })) => (role, expires),
            other => panic!("{line}: {other:?}"),
        };
        // Absent flags stay absent, so the config's defaults apply.
        assert_eq!(role("weft space invite"), (None, None));
        assert_eq!(
            role("weft space invite --role reader --expires 2h"),
            (Some(Role::Reader), Some("2h".into()))
        );
    }

    #[test]
    fn global_options_have_their_own_heading() {
        let help = Cli::command().render_help().to_string();
        let global = help.split("Global options:").nth(1).expect(&help);
        for flag in ["--data-dir", "--space", "--json", "--config"] {
            assert!(global.contains(flag), "{flag} under the heading: {help}");
        }
        let mut cmd = Cli::command();
        // Globals reach subcommands when the tree is built.
        cmd.build();
        let put = cmd
            .find_subcommand_mut("put")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            put.contains("Examples:") && put.contains("Global options:"),
            "{put}"
        );
    }
}
