// The page of the browser test in tests/tests/automerge_repo.rs: a stock
// automerge-repo web app, bundled by esbuild and loaded in headless
// Chromium from a loopback HTTP server. The query names the daemon's
// WebSocket (`ws`); the page reports each step with POST /report.
//
// The slim entry points plus the base64 wasm build load Automerge in a
// browser without a bundler plugin for `.wasm` imports.
import { Repo, initializeBase64Wasm } from "@automerge/automerge-repo/slim"
import { automergeWasmBase64 } from "@automerge/automerge/automerge.wasm.base64"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const report = (body) =>
  fetch("/report", { method: "POST", body: JSON.stringify(body) })

const plain = (doc) => JSON.parse(JSON.stringify(doc))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Whether the daemon accepts a WebSocket from this page's origin at all.
const opens = (url) =>
  new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.onopen = () => {
      ws.close()
      resolve(true)
    }
    ws.onerror = () => resolve(false)
  })

async function main() {
  const ws = new URLSearchParams(location.search).get("ws")
  const open = await opens(ws)
  await report({ step: "socket", open })
  if (!open) return
  await initializeBase64Wasm(automergeWasmBase64)
  const repo = new Repo({ network: [new BrowserWebSocketClientAdapter(ws)] })
  const handle = repo.create({ title: "from a browser", n: 1 })
  await report({ step: "created", url: handle.url })
  // Then waits for the daemon's side to add `fromDaemon`.
  const deadline = Date.now() + 60000
  while (Date.now() < deadline) {
    const doc = plain(handle.doc())
    if (doc.fromDaemon) return report({ step: "changed", doc })
    await sleep(100)
  }
  await report({ step: "changed", error: "no change from the daemon within 60 s" })
}

main().catch((e) => report({ step: "error", error: String(e?.stack ?? e) }))
