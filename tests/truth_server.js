// A ground-truth OpenAI-compatible streaming server: `node tests/truth_server.js PORT LOG [FIRST_MS] [GAP_MS] [TOKENS]`.
//
// It streams /v1/completions as vLLM does (one token per SSE chunk, usage in every chunk, `data:
// [DONE]`), on a schedule it keeps itself: the first token FIRST_MS after the request arrived,
// then one every GAP_MS (max_tokens of them, or TOKENS). It logs when it really did each thing,
// on CLOCK_MONOTONIC (process.hrtime, the clock Python's time.perf_counter reads on Linux), so a
// client's measurements can be held against what the server did: one JSON line per request in
// LOG — its id (the prompt), when the request had fully arrived, and when each token's write
// returned (the bytes are in the kernel's socket by then). One thread, one core: Node's event
// loop; a timer that fires late is logged as late, so the log is the truth, not the schedule.
"use strict";
const http = require("http");
const fs = require("fs");

const [port, logPath] = [Number(process.argv[2]), process.argv[3]];
const FIRST_MS = Number(process.argv[4] || 20);
const GAP_MS = Number(process.argv[5] || 10);
const TOKENS = Number(process.argv[6] || 0);
const log = fs.createWriteStream(logPath, { flags: "a" });
const nowNs = () => process.hrtime.bigint();
const seconds = (ns) => Number(ns) / 1e9;

function chunk(id, text, completion, prompt, finish) {
  const body = {
    id, object: "text_completion", model: "truth",
    choices: [{ index: 0, text, finish_reason: finish }],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
  return "data: " + JSON.stringify(body) + "\n\n";
}

function stream(req, res, body, receivedNs) {
  const id = String(body.prompt || "");
  const tokens = TOKENS || Number(body.max_tokens || 16);
  const prompt = 8;
  const writes = [];
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const started = receivedNs;
  let sent = 0;
  const next = () => {
    sent += 1;
    const finish = sent === tokens ? "length" : null;
    res.write(chunk(id, ` t${sent}`, sent, prompt, finish));
    writes.push(seconds(nowNs()));
    if (sent < tokens) {
      // the schedule is fixed from the arrival: a late timer does not push the later tokens back
      const due = Number(started) / 1e6 + FIRST_MS + sent * GAP_MS;
      setTimeout(next, Math.max(0, due - Number(nowNs()) / 1e6));
    } else {
      res.end("data: [DONE]\n\n");
      log.write(JSON.stringify({ id, received_s: seconds(receivedNs), writes_s: writes }) + "\n");
    }
  };
  setTimeout(next, FIRST_MS);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    const payload = req.url === "/v1/models" ? { data: [{ id: "truth" }] } : { status: "ok" };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(payload));
    return;
  }
  const parts = [];
  req.on("data", (d) => parts.push(d));
  req.on("end", () => {
    const receivedNs = nowNs();
    let body = {};
    try { body = JSON.parse(Buffer.concat(parts).toString("utf8")); } catch (e) { /* an empty id */ }
    stream(req, res, body, receivedNs);
  });
});
server.keepAliveTimeout = 120000;
server.headersTimeout = 121000;
server.listen(port, "127.0.0.1");
const stop = () => { log.end(() => process.exit(0)); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
