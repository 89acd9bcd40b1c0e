// A real automerge-repo app, driven by tests/tests/automerge_repo.rs.
//
//   node interop.mjs WS_URL
//
// Reads one JSON command per line on stdin and answers one JSON line on
// stdout: {"ok": ...} or {"error": "..."}. The Repo has no storage: every
// document it sees comes from (or goes to) the weft daemon at WS_URL.
import { createInterface } from "node:readline"
import { Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import WebSocket from "ws"

const url = process.argv[2]
const repo = new Repo({ network: [new BrowserWebSocketClientAdapter(url)] })
const handles = new Map()

const plain = (doc) => JSON.parse(JSON.stringify(doc))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// True when every field of `want` is in `doc` with the same JSON value.
const has = (doc, want) =>
  Object.entries(want).every(([k, v]) => JSON.stringify(doc?.[k]) === JSON.stringify(v))

async function handle(u) {
  if (!handles.has(u)) handles.set(u, await repo.find(u))
  return handles.get(u)
}

const commands = {
  // Creates a document; answers its URL.
  async create({ doc }) {
    const h = repo.create(doc)
    handles.set(h.url, h)
    return h.url
  },
  // Creates `n` documents {i}; answers their URLs.
  async createMany({ n }) {
    const urls = []
    for (let i = 0; i < n; i++) {
      const h = repo.create({ i })
      handles.set(h.url, h)
      urls.push(h.url)
    }
    return urls
  },
  // Waits until the document has the fields of `want`; answers it.
  async find({ url: u, want = {}, timeoutMs = 60000 }) {
    const deadline = Date.now() + timeoutMs
    let last
    while (Date.now() < deadline) {
      try {
        const h = await handle(u)
        last = plain(h.doc())
        if (has(last, want)) return last
      } catch (e) {
        last = String(e)
        handles.delete(u)
      }
      await sleep(100)
    }
    throw new Error(`timed out waiting for ${JSON.stringify(want)} in ${u}; last seen ${JSON.stringify(last)}`)
  },
  // Sets fields of a document.
  async change({ url: u, set }) {
    const h = await handle(u)
    h.change((d) => Object.assign(d, set))
    return plain(h.doc())
  },
  // Starts recording ephemeral messages of a document.
  async listen({ url: u }) {
    const h = await handle(u)
    h.ephemeral = []
    h.on("ephemeral-message", ({ message }) => h.ephemeral.push(message))
    return true
  },
  // Broadcasts an ephemeral message (presence, cursors) on a document.
  async broadcast({ url: u, message }) {
    ;(await handle(u)).broadcast(message)
    return true
  },
  // Waits for an ephemeral message on a listened document.
  async heard({ url: u, timeoutMs = 30000 }) {
    const h = await handle(u)
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (h.ephemeral?.length) return h.ephemeral
      await sleep(50)
    }
    throw new Error("no ephemeral message arrived")
  },
  // Opens a raw WebSocket and reports how the upgrade went.
  async probe({ url: u }) {
    return await new Promise((resolve) => {
      const ws = new WebSocket(u)
      ws.on("open", () => { ws.close(); resolve({ open: true }) })
      ws.on("unexpected-response", (_req, res) => resolve({ open: false, status: res.statusCode }))
      ws.on("error", (e) => resolve({ open: false, error: String(e) }))
    })
  },
  // Sends raw frames (hex), one after another, and reports what the server
  // said until it closed (or 5 s passed).
  async raw({ url: u, frames }) {
    return await new Promise((resolve) => {
      const ws = new WebSocket(u)
      const got = []
      setTimeout(() => { ws.terminate(); resolve({ closed: false, frames: got }) }, 5000)
      ws.on("open", () => frames.forEach((hex) => ws.send(Buffer.from(hex, "hex"))))
      ws.on("message", (m) => got.push(Buffer.from(m).toString("hex")))
      ws.on("close", (code) => resolve({ closed: true, code, frames: got }))
      ws.on("error", (e) => resolve({ closed: false, error: String(e), frames: got }))
    })
  },
  async exit() {
    setTimeout(() => process.exit(0), 10)
    return true
  },
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (!line.trim()) continue
  let answer
  try {
    const { cmd, ...args } = JSON.parse(line)
    if (!commands[cmd]) throw new Error(`unknown command ${cmd}`)
    answer = { ok: await commands[cmd](args) }
  } catch (e) {
    answer = { error: String(e?.stack ?? e) }
  }
  process.stdout.write(JSON.stringify(answer) + "\n")
}
