//! Sync settles across real daemons: eight `weft daemon` processes in a
//! random tree (admins inside, two readers and a member revoked on the way
//! as leaves) converge, every `status --wait-synced` returns, and then the
//! daemons exchange fewer than [`QUIET_FRAMES`] frames each in [`QUIET`].
//!
//! Readers and the revoked member are leaves because they cannot relay:
//! changes are not signed per author, so a node takes changes only from a
//! peer its log lets write, and a reader in the middle of a tree would cut
//! it in two. `WEFT_TREE_SEED=<n>` picks another tree.

use std::time::Duration;

use weft_tests::{Device, eventually};

const SYNC_WAIT: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_secs(3);
/// Frames one daemon may send and receive in [`QUIET`] once settled.
const QUIET_FRAMES: u64 = 10;
/// Daemons: admins forming the tree's inside, then the leaves.
const ADMINS: usize = 5;
const READERS: usize = 2;

fn frames(d: &Device) -> u64 {
    let status = d.json(&["status"]);
    let t = &status["traffic"];
    t["frames_sent"].as_u64().unwrap() + t["frames_received"].as_u64().unwrap()
}

/// splitmix64, so a tree can be named by its seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `joiner` joins `team` with an invite from `inviter` (which dials the
/// inviter only: the tree's edge), and waits until it holds `role`.
fn join(inviter: &Device, joiner: &Device, role: &str) {
    let token = inviter.ok(&["--space", "team", "space", "invite", "--role", role]);
    joiner.ok(&["space", "join", token.trim()]);
    eventually(SYNC_WAIT, || {
        let spaces = joiner.json(&["space", "list"]);
        spaces
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "team" && s["role"] == role)
            .then_some(())
    })
    .unwrap_or_else(|| {
        let log = |d: &Device| {
            std::fs::read_to_string(d.path().join("daemon-test.log")).unwrap_or_default()
        };
        panic!(
            "the {role} was not admitted: joiner {}, inviter {}\njoiner's log:\n{}\ninviter's log:\n{}",
            joiner.json(&["space", "list"]),
            inviter.json(&["space", "list"]),
            log(joiner),
            log(inviter)
        )
    });
}

fn has_note(d: &Device, id: &str) -> bool {
    d.run(&["--space", "team", "get", "notes", id])
        .status
        .success()
}

#[test]
fn eight_daemons_in_a_random_tree_settle() {
    let mut seed: u64 = std::env::var("WEFT_TREE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let devices: Vec<Device> = (0..ADMINS + READERS + 1).map(|_| Device::new()).collect();
    let _daemons: Vec<_> = devices.iter().map(|d| d.start_daemon(&[])).collect();
    devices[0].ok(&["space", "create", "team"]);
    // The inside: each admin joins through a random earlier admin.
    let mut edges = Vec::new();
    for i in 1..ADMINS {
        let parent = (next(&mut seed) % i as u64) as usize;
        join(&devices[parent], &devices[i], "admin");
        edges.push((parent, i));
    }
    // The leaves: two readers and a writer to be revoked.
    let revoked = ADMINS + READERS;
    for i in ADMINS..=revoked {
        let parent = (next(&mut seed) % ADMINS as u64) as usize;
        let role = if i == revoked { "writer" } else { "reader" };
        join(&devices[parent], &devices[i], role);
        edges.push((parent, i));
    }
    eprintln!("tree (parent, child): {edges:?}");
    // Every writer writes; the revoked member too, before its revocation.
    for (i, d) in devices.iter().enumerate() {
        if i < ADMINS || i == revoked {
            d.ok(&[
                "--space",
                "team",
                "put",
                "notes",
                &format!("n{i}"),
                r#"{"v":1}"#,
            ]);
        }
    }
    let written: Vec<String> = (0..ADMINS)
        .chain([revoked])
        .map(|i| format!("n{i}"))
        .collect();
    for (i, d) in devices.iter().enumerate().take(revoked) {
        eventually(SYNC_WAIT, || {
            written.iter().all(|id| has_note(d, id)).then_some(())
        })
        .unwrap_or_else(|| panic!("daemon {i} did not receive every note"));
    }
    let revoked_id = devices[revoked].json(&["id"])["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    devices[0].ok(&["--space", "team", "space", "revoke", &revoked_id]);
    devices[0].ok(&["--space", "team", "put", "notes", "after", r#"{"v":2}"#]);
    for (i, d) in devices.iter().enumerate().take(revoked) {
        eventually(SYNC_WAIT, || has_note(d, "after").then_some(()))
            .unwrap_or_else(|| panic!("daemon {i} did not receive the note after the revocation"));
    }
    for (i, d) in devices.iter().enumerate() {
        let out = d.run(&["status", "--wait-synced", "--timeout", "90"]);
        assert!(
            out.status.success(),
            "daemon {i} did not settle: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let before: Vec<u64> = devices.iter().map(frames).collect();
    std::thread::sleep(QUIET);
    let after: Vec<u64> = devices.iter().map(frames).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a - b < QUIET_FRAMES,
            "daemon {i} moved {} frames in {QUIET:?} after every daemon settled",
            a - b
        );
    }
    assert!(
        !has_note(&devices[revoked], "after"),
        "the revoked member received a note written after its revocation"
    );
}

/// A second device joining with an invite already used: `space join` fails
/// with the reason and exit 5, the space shows as refused, and neither
/// daemon keeps working on it (`--wait-synced` returns, traffic stops).
#[test]
fn a_reused_invite_is_refused_and_everything_settles() {
    let (admin, first, second) = (Device::new(), Device::new(), Device::new());
    let _daemons: Vec<_> = [&admin, &first, &second]
        .iter()
        .map(|d| d.start_daemon(&[]))
        .collect();
    admin.ok(&["space", "create", "team"]);
    let token = admin.ok(&["--space", "team", "space", "invite"]);
    let joined = first.json(&["space", "join", token.trim()]);
    assert_eq!(joined["state"], "writer", "{joined}");
    admin.ok(&["--space", "team", "put", "notes", "n", r#"{"v":1}"#]);
    eventually(SYNC_WAIT, || has_note(&first, "n").then_some(()))
        .expect("the first device received the note");
    let out = second.run(&["space", "join", token.trim(), "--timeout", "60"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("invite already used"), "{stderr}");
    let spaces = second.json(&["space", "list"]);
    let team = spaces
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "team")
        .unwrap_or_else(|| panic!("{spaces}"));
    assert_eq!(team["state"], "refused", "{team}");
    assert_eq!(team["reason"], "invite already used", "{team}");
    for d in [&admin, &first, &second] {
        let out = d.run(&["status", "--wait-synced", "--timeout", "60"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let devices = [&admin, &first, &second];
    let before: Vec<u64> = devices.iter().map(|d| frames(d)).collect();
    std::thread::sleep(QUIET);
    let after: Vec<u64> = devices.iter().map(|d| frames(d)).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a - b < QUIET_FRAMES,
            "daemon {i} moved {} frames in {QUIET:?}",
            a - b
        );
    }
    // The refused device was sent nothing of the space.
    assert!(!has_note(&second, "n"), "a refused device received a note");
    // A fresh invite admits it: its old, reused join does not count against it.
    let fresh = admin.ok(&["--space", "team", "space", "invite"]);
    let joined = second.json(&["space", "join", fresh.trim(), "--timeout", "60"]);
    assert_eq!(joined["state"], "writer", "{joined}");
    eventually(SYNC_WAIT, || has_note(&second, "n").then_some(()))
        .expect("the re-invited device received the note");
}

/// A join recorded while no daemon runs (embedded) completes when the
/// daemon starts: it dials the inviter from the invite's addresses (mDNS is
/// off here), is admitted, and receives the space.
#[test]
fn a_join_made_offline_completes_when_the_daemon_starts() {
    let (admin, joiner) = (Device::new(), Device::new());
    let _da = admin.start_daemon(&[]);
    admin.ok(&["space", "create", "team"]);
    admin.ok(&["--space", "team", "put", "notes", "n", r#"{"v":1}"#]);
    let token = admin.ok(&["--space", "team", "space", "invite"]);
    let joined = joiner.json(&["space", "join", token.trim()]);
    assert_eq!(joined["state"], "pending", "{joined}");
    let _dj = joiner.start_daemon(&[]);
    eventually(SYNC_WAIT, || has_note(&joiner, "n").then_some(()))
        .expect("the joiner's daemon reached the inviter and received the space");
    let spaces = joiner.json(&["space", "list"]);
    assert!(
        spaces
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "team" && s["state"] == "writer"),
        "{spaces}"
    );
}
