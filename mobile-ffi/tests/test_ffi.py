"""End-to-end test of the generated Python bindings, as an app would use them.

Run by `mobile-ffi/bindgen/tests/bindings.rs` (part of `cargo test --workspace`),
which generates `weft_ffi.py` next to the built `libweft_ffi` and puts that
directory on PYTHONPATH. Needs only the standard library.
"""

import asyncio
import json
import sys
import tempfile
import threading
import time

from weft_ffi import (
    ChangeListener,
    Filter,
    FilterOp,
    NodeOptions,
    Origin,
    QueryListener,
    Role,
    SyncStatusListener,
    WeftError,
    WeftNode,
)

WAIT_SECONDS = 30.0
LOOPBACK = NodeOptions(listen=["/ip4/127.0.0.1/tcp/0"], mdns=False)


class Recorder(ChangeListener):
    """Collects events; called from a Weft thread, read from the test's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        self.threads = set()

    def on_change(self, event):
        with self.lock:
            self.events.append(event)
            self.threads.add(threading.get_ident())

    def on_lagged(self, missed):
        raise AssertionError(f"the listener lagged by {missed} events in a tiny test")

    def snapshot(self):
        with self.lock:
            return list(self.events)


class Results(QueryListener):
    """Collects a live query's results (lists of ids), from a Weft thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.results = []

    def on_result(self, rows):
        with self.lock:
            self.results.append([r.id for r in rows])

    def on_error(self, message):
        raise AssertionError(f"the live query failed: {message}")

    def snapshot(self):
        with self.lock:
            return list(self.results)


class Statuses(SyncStatusListener):
    """Collects sync statuses, from a Weft thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = []

    def on_status(self, status):
        with self.lock:
            self.statuses.append(status)

    def snapshot(self):
        with self.lock:
            return list(self.statuses)


async def until(what, check):
    """Polls the coroutine function `check` until it returns a truthy value."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.05)


async def expect_error(kind, needle, coroutine):
    """Awaits `coroutine`, which must raise `kind` with `needle` in its message."""
    try:
        await coroutine
    except kind as e:
        assert needle in str(e), f"{kind.__name__} message {str(e)!r} lacks {needle!r}"
        print(f"  raised {e!r}")
        return e
    raise AssertionError(f"expected {kind.__name__} containing {needle!r}, nothing was raised")


async def main():
    with tempfile.TemporaryDirectory() as dir_a, tempfile.TemporaryDirectory() as dir_b:
        a = await WeftNode.open(dir_a, LOOPBACK)
        b = await WeftNode.open(dir_b, LOOPBACK)
        a_id = a.node_id()
        print(f"opened a={a_id} b={b.node_id()}")

        # b follows sync status from the start: alone, it is synced.
        statuses = Statuses()
        status_observer = b.observe_sync_status(statuses)
        first = await until("b's first sync status", lambda: latest(statuses))
        assert first.peers == 0 and first.synced, first

        # Share a space: create on a, invite b, connect, then join on b: on
        # phones mDNS often connects devices before anyone joins a space.
        team = await a.space_create("team")
        token = await a.space_invite(Role.WRITER, 3600, space="team", node=b.node_id())
        addrs = await a.listen_addrs()
        assert addrs and all(x.startswith("/ip4/127.0.0.1/tcp/") for x in addrs), addrs
        assert await b.connect(addrs[0]) == a_id
        assert await b.space_join(token) == team
        # The join returns at once; the inviter's answer is waited for apart.
        assert await b.space_wait_admission(team, 30_000) == "writer"
        await until("b to become a writer in team", lambda: b_is_writer(b, team))

        recorder = Recorder()
        subscription = await b.subscribe(recorder, space=team)
        # The status listener saw a connect (no polling).
        await until("b's status listener to see a", lambda: peer_seen(statuses))
        # A live query on b: its result now, and again when a's write lands.
        open_notes = Results()
        observer = await b.observe(
            "notes", [Filter(field="done", op=FilterOp.EQ, value="false")], open_notes, space=team
        )
        await until("the live query's first result", lambda: result_is(open_notes, []))

        # A write on a shows up on b, and b's listener hears it as remote.
        await a.put("notes", "n1", json.dumps({"title": "from a", "done": False}), space=team)
        doc = await until("n1 on b", lambda: b.get("notes", "n1", space=team))
        assert json.loads(doc) == {"title": "from a", "done": False}, doc
        event = await until("a remote event on b", lambda: remote_event(recorder, "n1"))
        assert event.space == team and event.collection == "notes" and event.heads, event
        assert threading.get_ident() not in recorder.threads, "events come on Weft's thread"
        print(f"b heard {event}")
        await until("the live query to show n1", lambda: result_is(open_notes, ["n1"]))
        # Another collection changes: the query is not re-run, nothing is sent.
        results_before = len(open_notes.snapshot())
        await a.put("other", "o1", json.dumps({"done": False}), space=team)
        await until("o1 on b", lambda: b.get("other", "o1", space=team))
        await asyncio.sleep(0.3)
        assert len(open_notes.snapshot()) == results_before, open_notes.snapshot()

        # Typed records and JSON results.
        await a.patch("notes", "n1", json.dumps({"done": True}), space=team)
        await a.put("notes", "n2", json.dumps({"title": "second", "done": False}), space=team)
        done = await a.list("notes", filters=[Filter(field="done", op=FilterOp.EQ, value="true")], space=team)
        assert [r.id for r in done] == ["n1"], done
        newest_first = await a.list("notes", order="-title", limit=1, space=team)
        assert [r.id for r in newest_first] == ["n2"], newest_first
        rows = json.loads(await a.sql("SELECT id FROM documents WHERE collection = 'notes' ORDER BY id"))
        assert rows == [{"id": "n1"}, {"id": "n2"}], rows
        history = await a.history("notes", "n1", space=team)
        assert [c.message for c in history] == ["put", "patch"], history
        # The same document has the same automerge-repo URL on both replicas.
        url = await a.url("notes", "n1", space=team)
        assert url.startswith("automerge:") and url == await b.url("notes", "n1", space=team), url
        await expect_error(WeftError.NotFound, "not found", a.url("notes", "nope", space=team))
        spaces = {s.id: s for s in await b.space_list()}
        assert spaces[team].role == Role.WRITER and len(spaces[team].members) == 2, spaces
        assert spaces[team].state == "writer" and spaces[team].reason is None, spaces
        peers = await a.peers()
        assert any(p.node_id == b.node_id() and p.connected for p in peers), peers
        status = await a.status()
        assert status.online and status.peers_connected == 1 and status.documents >= 2, status

        # Bad calls raise WeftError with a message; nothing panics.
        await expect_error(WeftError.InvalidInput, "not valid JSON", a.put("notes", "x", "{not json"))
        await expect_error(WeftError.InvalidInput, "object", a.put("notes", "x", "[1, 2]"))
        await expect_error(WeftError.NotFound, "unknown space", a.put("notes", "x", "{}", space="nope"))
        await expect_error(WeftError.NotFound, "not found", a.patch("notes", "missing", "{}"))
        await expect_error(WeftError.InvalidInput, "SQL", a.sql("DELETE FROM documents"))
        await expect_error(WeftError.InvalidInput, "not a multiaddr", a.connect("not-an-address"))
        await expect_error(WeftError.Invite, "not a Weft invite token", b.space_join("garbage"))
        await expect_error(WeftError.InvalidInput, "too long", b.space_wait_admission(team, 86_400_001))
        await expect_error(WeftError.NotFound, "unknown space", b.space_wait_admission("nope", 10))
        bad = NodeOptions(listen=["nonsense"])
        await expect_error(WeftError.InvalidInput, "listen", WeftNode.open(dir_a + "-x", bad))
        await expect_error(WeftError.Locked, "in use", WeftNode.open(dir_a, LOOPBACK))

        # Background: while a is paused nothing flows; on resume it catches up.
        await a.pause_network()
        assert not (await a.status()).online
        await expect_error(WeftError.Network, "paused", a.connect(addrs[0]))
        await a.put("notes", "while-paused", json.dumps({"n": 1}), space=team)
        await until("b to lose a", lambda: no_peers(b))
        assert await b.get("notes", "while-paused", space=team) is None
        await a.resume_network()
        assert (await a.status()).online
        await until("the paused write on b", lambda: b.get("notes", "while-paused", space=team))

        # A cancelled live query hears nothing more either.
        observer.cancel()
        status_observer.cancel()
        results_before = len(open_notes.snapshot())
        # A cancelled subscription hears nothing more.
        subscription.cancel()
        heard = len(recorder.snapshot())
        await a.put("notes", "after-cancel", json.dumps({"n": 2, "done": False}), space=team)
        await until("after-cancel on b", lambda: b.get("notes", "after-cancel", space=team))
        await b.wait_synced(30_000)
        await asyncio.sleep(0.3)  # longer than a live query takes to answer
        assert len(recorder.snapshot()) == heard, recorder.snapshot()[heard:]
        assert len(open_notes.snapshot()) == results_before, open_notes.snapshot()

        # Close, then reopen the same directory: the data is still there.
        await a.shutdown()
        await a.shutdown()
        await expect_error(WeftError.Closed, "closed", a.get("notes", "n1", space=team))
        a = await WeftNode.open(dir_a, NodeOptions(network=False))
        assert a.node_id() == a_id
        doc = await a.get("notes", "n1", space=team)
        assert json.loads(doc) == {"title": "from a", "done": True}, doc
        await expect_error(WeftError.Network, "off", a.resume_network())
        await a.shutdown()
        await b.shutdown()
        print("all Python FFI checks passed")


async def b_is_writer(node, space):
    return any(s.id == space and s.role == Role.WRITER for s in await node.space_list())


async def remote_event(recorder, doc_id):
    for e in recorder.snapshot():
        if e.id == doc_id and e.origin == Origin.REMOTE:
            return e
    return None


async def latest(listener):
    got = listener.snapshot()
    return got[-1] if got else None


async def peer_seen(statuses):
    return any(s.peers >= 1 for s in statuses.snapshot())


async def result_is(results, ids):
    got = results.snapshot()
    return bool(got) and got[-1] == ids


async def no_peers(node):
    return (await node.status()).peers_connected == 0


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
