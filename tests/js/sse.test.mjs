// The SSE helper: SseParser on byte chunks split at awkward places, and
// sseStream (fetch) against a tiny Node HTTP server in the test. The server's
// HTTP transport is built on another branch; these tests follow the
// "HTTP transport" section of the protocol.
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import { test } from "node:test";

import {
  DeadlineExceeded,
  NotFound,
  PermissionDenied,
  ResourceExhausted,
  SseParser,
  StateLost,
  Unavailable,
  Unknown,
  sseStream,
} from "../../streaming_app/static/streaming_app/client.js";
import { sleep, until } from "./helpers.mjs";

const bytes = (text) => new TextEncoder().encode(text);

function parseAll(chunks) {
  const parser = new SseParser();
  const events = [];
  for (const chunk of chunks) events.push(...parser.push(chunk));
  events.push(...parser.end());
  return { events, parser };
}

// -- the parser ----------------------------------------------------------------------------------

test("one event: its type, data and id", () => {
  const { events } = parseAll([bytes('id: e:1\nevent: next\ndata: {"i":0}\n\n')]);
  assert.deepEqual(events, [{ event: "next", data: '{"i":0}', id: "e:1" }]);
});

test("data lines join with newlines", () => {
  const { events } = parseAll([bytes("data: a\ndata: b\ndata:\ndata: c\n\n")]);
  assert.deepEqual(events.map((e) => e.data), ["a\nb\n\nc"]);
});

test("an event without a type is a message; an event without data is not dispatched", () => {
  const { events } = parseAll([bytes("data: x\n\nevent: end\n\nid: 7\n\ndata:\n\n")]);
  assert.deepEqual(events, [
    { event: "message", data: "x", id: "" },
    { event: "message", data: "", id: "7" },
  ]);
});

test("comment lines are skipped and counted as keepalives", () => {
  const { events, parser } = parseAll([bytes(": keepalive\n\n:\nevent: next\n: inside\ndata: 1\n\n")]);
  assert.deepEqual(events, [{ event: "next", data: "1", id: "" }]);
  assert.equal(parser.comments, 3);
});

test("the id persists across events; an id containing NUL is ignored", () => {
  const { events } = parseAll([bytes("id: a\ndata: 1\n\ndata: 2\n\nid: b\0c\ndata: 3\n\nid\ndata: 4\n\n")]);
  assert.deepEqual(events.map((e) => e.id), ["a", "a", "a", ""]);
});

test("one space after the colon is dropped, not more; a line without a colon is a field with no value", () => {
  const { events } = parseAll([bytes("data:  two spaces\n\ndata:none\n\ndata\n\n")]);
  assert.deepEqual(events.map((e) => e.data), [" two spaces", "none", ""]);
});

test("retry is read as milliseconds; unknown fields are ignored", () => {
  const { events, parser } = parseAll([bytes("retry: 1500\nfoo: bar\ndata: x\n\nretry: soon\n\n")]);
  assert.equal(parser.retry, 1500);
  assert.deepEqual(events.map((e) => e.data), ["x"]);
});

test("an event cut off by the end of the body is dropped", () => {
  const { events } = parseAll([bytes("data: complete\n\ndata: cut off\n")]);
  assert.deepEqual(events.map((e) => e.data), ["complete"]);
});

test("a leading byte order mark is skipped, once", () => {
  const { events } = parseAll([new Uint8Array([0xef, 0xbb]), new Uint8Array([0xbf]), bytes("data: \ufeffx\n\n")]);
  assert.deepEqual(events.map((e) => e.data), ["\ufeffx"]);
});

test("text chunks work as well as bytes", () => {
  const { events } = parseAll(["event: next\nda", "ta: 1\n", "\n"]);
  assert.deepEqual(events, [{ event: "next", data: "1", id: "" }]);
});

// A stream with every kind of line end, comments, ids, multi-line data and
// multi-byte UTF-8 (2, 3 and 4 bytes), parsed whole and split at every byte.
const TRICKY =
  "\ufeff: hello\r\n" +
  "id: e:1\r\nevent: next\r\ndata: {\"s\":\"é€😀\"}\r\n\r\n" +
  "event: next\rdata: line 1\rdata: line 2\r\r" +
  ": keepalive\n\n" +
  "id: e:2\nevent: next\ndata: {\"i\":2}\n\n" +
  "event: end\r\ndata: null\r\n\r\n";

const TRICKY_EVENTS = [
  { event: "next", data: '{"s":"é€😀"}', id: "e:1" },
  { event: "next", data: "line 1\nline 2", id: "e:1" },
  { event: "next", data: '{"i":2}', id: "e:2" },
  { event: "end", data: "null", id: "e:2" },
];

test("every line ending (CRLF, CR, LF) and multi-byte characters parse in one chunk", () => {
  assert.deepEqual(parseAll([bytes(TRICKY)]).events, TRICKY_EVENTS);
});

test("the same events whatever byte the stream is split at, including inside CRLF and UTF-8 sequences", () => {
  const all = bytes(TRICKY);
  for (let at = 0; at <= all.length; at++) {
    const { events } = parseAll([all.slice(0, at), all.slice(at)]);
    assert.deepEqual(events, TRICKY_EVENTS, `split at byte ${at}`);
  }
});

test("the same events fed one byte at a time, and in chunks split at every pair of points", () => {
  const all = bytes(TRICKY);
  assert.deepEqual(parseAll([...all].map((b) => new Uint8Array([b]))).events, TRICKY_EVENTS);
  for (let a = 0; a <= all.length; a += 3) {
    for (let b = a; b <= all.length; b += 5) {
      assert.deepEqual(parseAll([all.slice(0, a), all.slice(a, b), all.slice(b)]).events, TRICKY_EVENTS, `split at ${a} and ${b}`);
    }
  }
});

test("a CR at the end of one chunk and an LF at the start of the next are one line end", () => {
  const { events } = parseAll([bytes("data: a\r"), bytes("\ndata: b\r"), bytes("\n\r"), bytes("\n")]);
  assert.deepEqual(events.map((e) => e.data), ["a\nb"]);
});

// -- sseStream over fetch ---------------------------------------------------------------------------

/** A Node HTTP server whose requests `handler(req, res, body)` answers; `requests` records them. */
async function httpServer(t, handler) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const record = { method: req.method, url: req.url, headers: req.headers, body, closedEarly: false };
    res.on("close", () => (record.closedEarly = !res.writableFinished));
    requests.push(record);
    handler(req, res, body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

const SSE_HEADERS = { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache" };

function sendEvents(res, text) {
  res.writeHead(200, SSE_HEADERS);
  res.end(text);
}

test("sseStream POSTs the arguments as JSON with its headers, yields items, then the result", async (t) => {
  const server = await httpServer(t, (req, res) =>
    sendEvents(res, 'event: next\ndata: {"i":0}\n\n: keepalive\n\nevent: next\ndata: {"i":1}\n\nevent: end\ndata: {"total":2}\n\n'),
  );
  const stream = sseStream(`${server.url}/streams/interop.count`, { n: 2 }, { headers: { "X-Trace": "t1" }, token: "tok" });
  const items = [];
  for await (const item of stream) items.push(item);
  assert.deepEqual(items, [{ i: 0 }, { i: 1 }]);
  assert.deepEqual(stream.result, { total: 2 });
  const [request] = server.requests;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "/streams/interop.count");
  assert.deepEqual(JSON.parse(request.body), { n: 2 });
  assert.equal(request.headers["content-type"], "application/json");
  assert.equal(request.headers.accept, "text/event-stream");
  assert.equal(request.headers.authorization, "Bearer tok");
  assert.equal(request.headers["x-trace"], "t1");
});

test("sseStream with GET sends the arguments as query parameters", async (t) => {
  const server = await httpServer(t, (req, res) => sendEvents(res, "event: end\ndata: null\n\n"));
  const stream = sseStream(`${server.url}/streams/interop.count`, { n: 2, tag: "a b", flags: [1] }, { method: "GET" });
  assert.deepEqual(await stream.next(), { value: undefined, done: true });
  assert.equal(stream.result, null);
  const url = new URL(server.requests[0].url, server.url);
  assert.equal(server.requests[0].method, "GET");
  assert.deepEqual(Object.fromEntries(url.searchParams), { n: "2", tag: "a b", flags: "[1]" });
});

test("an error event ends the stream with its typed error after the items before it", async (t) => {
  const server = await httpServer(t, (req, res) =>
    sendEvents(res, 'event: next\ndata: {"i":0}\n\nevent: error\ndata: {"code":"not_found","message":"gone","details":{"k":1}}\n\n'),
  );
  const items = [];
  await assert.rejects(
    (async () => {
      for await (const item of sseStream(`${server.url}/s`)) items.push(item);
    })(),
    (error) => error instanceof NotFound && error.message === "gone" && error.details.k === 1,
  );
  assert.deepEqual(items, [{ i: 0 }]);
});

test("a non-200 response with a JSON error body rejects with that typed error", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(403, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { code: "permission_denied", message: "no", details: { why: "staff" } } }));
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => {
    assert.ok(error instanceof PermissionDenied);
    assert.equal(error.message, "no");
    assert.deepEqual(error.details, { why: "staff", status: 403 });
    return true;
  });
});

test("a non-200 response without a JSON body rejects with the code of its status", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(503, { "Content-Type": "text/html" });
    res.end("<h1>down</h1>");
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => error instanceof Unavailable && error.details.status === 503);
});

test("a 429 without a JSON body (a proxy's) rejects with ResourceExhausted whose retryAfter is its Retry-After", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(429, { "Content-Type": "text/plain", "Retry-After": "7" });
    res.end("Too Many Requests");
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => {
    assert.ok(error instanceof ResourceExhausted);
    assert.equal(error.retryAfter, 7);
    assert.deepEqual(error.details, { status: 429, retry_after: 7 });
    return true;
  });
});

test("a Retry-After HTTP-date gives the seconds until then", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(503, { "Retry-After": new Date(Date.now() + 30000).toUTCString() });
    res.end();
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => {
    assert.ok(error instanceof Unavailable);
    assert.ok(error.retryAfter > 20 && error.retryAfter <= 31, String(error.retryAfter));
    return true;
  });
});

test("the body's details.retry_after wins over the whole seconds of Retry-After", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "43" });
    res.end(JSON.stringify({ error: { code: "resource_exhausted", message: "slow down", details: { retry_after: 42.25 } } }));
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => error instanceof ResourceExhausted && error.retryAfter === 42.25);
});

test("a malformed Retry-After is no hint", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(429, { "Retry-After": "soon" });
    res.end();
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), (error) => error instanceof ResourceExhausted && error.retryAfter === null);
});

test("a 200 response that is not an event stream rejects", async (t) => {
  const server = await httpServer(t, (req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"d": 1}');
  });
  await assert.rejects(sseStream(`${server.url}/s`).next(), Unknown);
});

test("a response that ends without an end event rejects with unavailable and the last event id", async (t) => {
  const server = await httpServer(t, (req, res) => sendEvents(res, 'id: e:4\nevent: next\ndata: 4\n\nevent: next\ndata: 5\n'));
  const stream = sseStream(`${server.url}/s`);
  assert.equal((await stream.next()).value, 4);
  await assert.rejects(stream.next(), (error) => error instanceof Unavailable && error.details.last_event_id === "e:4");
});

/** A server that streams an item every 20 ms until the client goes away. */
function endless(req, res) {
  res.writeHead(200, SSE_HEADERS);
  let k = 0;
  const timer = setInterval(() => res.write(`event: next\ndata: ${k++}\n\n`), 20);
  res.on("close", () => clearInterval(timer));
}

test("break closes the response, which the server sees as the client going away", async (t) => {
  const server = await httpServer(t, endless);
  for await (const item of sseStream(`${server.url}/s`)) {
    if (item === 2) break;
  }
  await until(() => server.requests[0].closedEarly, { what: "the server to see the connection close" });
});

test("an AbortSignal closes the response and the loop rejects with its reason", async (t) => {
  const server = await httpServer(t, endless);
  const controller = new AbortController();
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const item of sseStream(`${server.url}/s`, {}, { signal: controller.signal })) {
        seen.push(item);
        if (item === 1) controller.abort();
      }
    })(),
    { name: "AbortError" },
  );
  assert.deepEqual(seen, [0, 1]);
  await until(() => server.requests[0].closedEarly, { what: "the server to see the connection close" });
});

test("a timeout ends the stream with deadline_exceeded and closes the response", async (t) => {
  const server = await httpServer(t, endless);
  const started = Date.now();
  await assert.rejects(
    (async () => {
      for await (const _ of sseStream(`${server.url}/s`, {}, { timeout: 0.2 }));
    })(),
    DeadlineExceeded,
  );
  assert.ok(Date.now() - started >= 180);
  await until(() => server.requests[0].closedEarly);
});

test("a ready event is consumed, not yielded; ids become lastEventId, sent back as Last-Event-ID", async (t) => {
  const server = await httpServer(t, (req, res) =>
    sendEvents(res, 'event: ready\nid: e:7\ndata: {"eid":"e:7","recovered":true}\n\nid: e:8\nevent: next\ndata: "eight"\n\nevent: end\ndata: null\n\n'),
  );
  const stream = sseStream(`${server.url}/s`, {}, { lastEventId: "e:7" });
  const items = [];
  for await (const item of stream) items.push(item);
  assert.deepEqual(items, ["eight"]);
  assert.deepEqual(stream.ready, { eid: "e:7", recovered: true });
  assert.equal(stream.lastEventId, "e:8");
  assert.equal(server.requests[0].headers["last-event-id"], "e:7");
});

test("a ready event with recovered false rejects with StateLost", async (t) => {
  const server = await httpServer(t, (req, res) => sendEvents(res, 'event: ready\nid: b:0\ndata: {"eid":"b:0","recovered":false}\n\n'));
  await assert.rejects(sseStream(`${server.url}/s`, {}, { lastEventId: "a:3" }).next(), (error) => {
    assert.ok(error instanceof StateLost);
    assert.deepEqual(error.details, { resume: "a:3", eid: "b:0" });
    return true;
  });
});

test("items arriving slowly in small pieces are yielded as each event completes", async (t) => {
  const server = await httpServer(t, async (req, res) => {
    res.writeHead(200, SSE_HEADERS);
    for (const piece of ["event: ne", "xt\r", "\ndata: {\"a\":", "1}\r\n", "\r\n", "event: end\ndata: 3\n\n"]) {
      res.write(piece);
      await sleep(15);
    }
    res.end();
  });
  const stream = sseStream(`${server.url}/s`);
  const items = [];
  for await (const item of stream) items.push(item);
  assert.deepEqual(items, [{ a: 1 }]);
  assert.equal(stream.result, 3);
});

test("in a page, the CSRF cookie goes with POSTs to the page's own origin only", async (t) => {
  const server = await httpServer(t, (req, res) => sendEvents(res, "event: end\ndata: null\n\n"));
  globalThis.document = { cookie: "other=1; csrftoken=tok%3D1" };
  t.after(() => {
    delete globalThis.document;
    delete globalThis.location;
  });
  globalThis.location = new URL(`${server.url}/page/`);
  await sseStream("/s", {}).next(); // a path: the page's origin
  globalThis.location = new URL("http://elsewhere.test/page/");
  await sseStream(`${server.url}/s`, {}).next();
  assert.equal(server.requests[0].headers["x-csrftoken"], "tok=1");
  assert.equal(server.requests[1].headers["x-csrftoken"], undefined);
});
