// The client's side of the protocol against a scripted server (tests/js/helpers.mjs):
// what a real server cannot be made to do on demand, such as dying silently,
// closing with a chosen code, withholding credit, or sending `ready` frames of
// resumable streams (which the server does not send yet).
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";

import {
  DeadlineExceeded,
  StateLost,
  StreamClient,
  Unauthenticated,
  Unavailable,
} from "../../streaming_app/static/streaming_app/client.js";
import { fakeServer, sleep, until } from "./helpers.mjs";

const options = { timeout: 15000 };

/** A fake server and a client of it, both closed after the test. */
async function setup(t, onConnection, clientOptions = {}) {
  const server = await fakeServer(onConnection);
  const states = [];
  const client = new StreamClient(server.url, {
    reconnectInitial: 0.02,
    reconnectMax: 0.1,
    onStateChange: (state) => states.push(state),
    ...clientOptions,
  });
  t.after(async () => {
    await client.close();
    await server.close();
  });
  return { server, client, states };
}

const collect = async (iterable) => {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
};

// -- handshake and ids -------------------------------------------------------------------------

test("the client offers the streaming.v1.json subprotocol and sends nothing before hello", options, async (t) => {
  let helloAt = 0;
  const { server, client } = await setup(t, (conn) =>
    setTimeout(() => {
      helloAt = Date.now();
      conn.hello();
    }, 150),
  );
  const result = client.call("x.unary");
  const conn = await server.connection(0);
  assert.equal(conn.request.headers["sec-websocket-protocol"], "streaming.v1.json");
  const call = await conn.frame({ t: "call" });
  assert.ok(call.at >= helloAt && helloAt > 0, "the call frame came after hello");
  assert.deepEqual({ id: call.id, m: call.m, a: call.a, credit: call.credit }, { id: 1, m: "x.unary", a: undefined, credit: undefined });
  conn.send({ t: "end", id: 1, d: "done" });
  assert.equal(await result, "done");
});

test("call ids strictly increase, also across reconnections", options, async (t) => {
  const { server, client } = await setup(t);
  const first = await server.connection(0);
  const pending = [client.call("x.a"), client.call("x.b"), client.call("x.c")];
  const ids = [];
  for (const m of ["x.a", "x.b", "x.c"]) ids.push((await first.frame({ m })).id);
  for (const id of ids) first.send({ t: "end", id });
  await Promise.all(pending);
  first.kill();
  const second = await server.connection(1);
  const later = client.call("x.d");
  const { id } = await second.frame({ m: "x.d" });
  second.send({ t: "end", id });
  await later;
  assert.deepEqual([...ids, id], [1, 2, 3, 4]);
});

test("the call frame carries arguments, credit, and the timeout in seconds", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const stream = client.stream("x.items", { n: 3 }, { timeout: 5, window: 6 });
  stream.next();
  const call = await conn.frame({ t: "call" });
  assert.deepEqual(call.a, { n: 3 });
  assert.equal(call.credit, 6);
  assert.ok(call.timeout > 4.8 && call.timeout <= 5, `timeout ${call.timeout}`);
  assert.equal(call.resume, undefined);
  stream.cancel();
});

test("a stream with window null asks for unbounded credit and grants none", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const items = collect(client.stream("x.items", {}, { window: null }));
  const call = await conn.frame({ t: "call" });
  assert.equal("credit" in call, false);
  for (let k = 0; k < 10; k++) conn.send({ t: "next", id: call.id, d: k });
  conn.send({ t: "end", id: call.id });
  assert.equal((await items).length, 10);
  assert.equal(conn.frames.filter((f) => f.t === "credit").length, 0);
});

// -- credit --------------------------------------------------------------------------------------

test("credit goes back in half windows as the caller consumes items", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const stream = client.stream("x.items", {}, { window: 4 });
  const first = stream.next();
  const call = await conn.frame({ t: "call" });
  assert.equal(call.credit, 4);
  for (let k = 0; k < 4; k++) conn.send({ t: "next", id: call.id, d: k });
  await first;
  await sleep(50);
  assert.equal(conn.frames.filter((f) => f.t === "credit").length, 0, "no credit after one item");
  await stream.next();
  const credit = await conn.frame({ t: "credit" });
  assert.deepEqual([credit.id, credit.n], [call.id, 2]);
  await stream.next();
  await stream.next();
  assert.equal((await conn.frame({ t: "credit" })).n, 2);
  await stream.return();
});

test("send() waits once client_window items are out, until the server grants credit", options, async (t) => {
  const { server, client } = await setup(t, (conn) => conn.hello({ limits: { client_window: 2 } }));
  const conn = await server.connection(0);
  const call = await client.open("x.sum");
  const { id } = await conn.frame({ t: "call" });
  await call.send(1);
  await call.send(2);
  let third = false;
  const sent = call.send(3).then(() => (third = true));
  await sleep(100);
  assert.equal(third, false, "the third send waits");
  assert.equal(conn.frames.filter((f) => f.t === "next").length, 2);
  conn.send({ t: "credit", id, n: 1 });
  await sent;
  assert.equal((await conn.frame({ t: "next", d: 3 })).id, id);
});

test("a send() waiting for credit rejects with the call's error when the server fails it", options, async (t) => {
  const { server, client } = await setup(t, (conn) => conn.hello({ limits: { client_window: 0 } }));
  const conn = await server.connection(0);
  const call = await client.open("x.sum");
  const { id } = await conn.frame({ t: "call" });
  const sent = call.send(1);
  conn.send({ t: "error", id, code: "resource_exhausted", message: "full", details: {} });
  await assert.rejects(sent, { code: "resource_exhausted", message: "full" });
});

// -- deadlines while waiting ------------------------------------------------------------------------

test("a call still waiting for a connection fails with deadline_exceeded at its deadline", options, async (t) => {
  const { client } = await setup(t, () => {}); // never says hello
  const started = Date.now();
  await assert.rejects(client.call("x.slow", {}, { timeout: 0.2 }), DeadlineExceeded);
  assert.ok(Date.now() - started >= 180);
  assert.equal(client.state, "connecting");
});

// -- heartbeats --------------------------------------------------------------------------------

test("the client answers the server's ping with a pong carrying the same d", options, async (t) => {
  const { server } = await setup(t);
  const conn = await server.connection(0);
  conn.send({ t: "ping" });
  const plain = await conn.frame({ t: "pong" });
  assert.equal("d" in plain, false);
  conn.send({ t: "ping", d: { n: 7 } });
  assert.deepEqual((await conn.frame({ t: "pong" })).d, { n: 7 });
});

test("after hello.heartbeat seconds of silence the client pings; after twice that it reconnects", options, async (t) => {
  const { server, client, states } = await setup(t, (conn) => conn.hello({ heartbeat: 0.2 }));
  const first = await server.connection(0);
  const ping = await first.frame({ t: "ping" });
  assert.ok(ping.at - first.openedAt >= 180, "not before the interval");
  const second = await server.connection(1, { timeout: 3000 });
  assert.ok(second.openedAt - first.openedAt >= 380, "dead only after twice the interval");
  await until(() => client.state === "open" && states.length === 4);
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
  assert.equal(client.closeCode, 4408);
});

test("a server that answers pings keeps the connection alive", options, async (t) => {
  const { server, client } = await setup(t, (conn) => {
    conn.hello({ heartbeat: 0.1 });
    conn.ws.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.t === "ping") conn.send({ t: "pong", d: frame.d });
    });
  });
  const conn = await server.connection(0);
  await sleep(700);
  assert.ok(conn.frames.filter((f) => f.t === "ping").length >= 2);
  assert.equal(server.connections.length, 1);
  assert.equal(client.state, "open");
});

test("heartbeat: false turns the client's pings off", options, async (t) => {
  const { server } = await setup(t, (conn) => conn.hello({ heartbeat: 0.05 }), { heartbeat: false });
  const conn = await server.connection(0);
  await sleep(300);
  assert.equal(conn.frames.length, 0);
  assert.equal(server.connections.length, 1);
});

// -- close codes and reconnection ----------------------------------------------------------------

for (const code of [1000, 4000, 4400, 4403, 4413]) {
  test(`after close code ${code} the client does not reconnect and open calls fail with unavailable`, options, async (t) => {
    const { server, client, states } = await setup(t);
    const conn = await server.connection(0);
    const pending = client.call("x.slow");
    await conn.frame({ t: "call" });
    conn.close(code);
    await assert.rejects(pending, (error) => error instanceof Unavailable && error.details.close_code === code);
    await sleep(200);
    assert.equal(server.connections.length, 1);
    assert.deepEqual(states, ["connecting", "open", "closed"]);
    await assert.rejects(client.call("x.more"), Unavailable);
  });
}

for (const code of [1006, 1011, 4408, 4429, 4500, 4503]) {
  test(`after close code ${code} the client reconnects; open calls fail with unavailable`, options, async (t) => {
    const { server, client, states } = await setup(t);
    const conn = await server.connection(0);
    const pending = client.call("x.slow");
    await conn.frame({ t: "call" });
    if (code === 1006) conn.kill();
    else conn.close(code);
    await assert.rejects(pending, (error) => error instanceof Unavailable && error.details.close_code === code);
    await server.connection(1);
    await until(() => client.state === "open");
    assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
  });
}

test("a call made while reconnecting waits for the new connection", options, async (t) => {
  const { server, client } = await setup(t, (conn) => {
    // The second connection says hello only after a while.
    if (server.connections.length === 1) conn.hello();
    else setTimeout(() => conn.hello(), 200);
  });
  const first = await server.connection(0);
  first.kill();
  await until(() => client.state === "reconnecting");
  const result = client.call("x.later");
  const second = await server.connection(1);
  const { id } = await second.frame({ m: "x.later" });
  second.send({ t: "end", id, d: 42 });
  assert.equal(await result, 42);
  assert.equal(first.frames.some((f) => f.m === "x.later"), false);
});

test("4401 on a reconnection closes the client with unauthenticated", options, async (t) => {
  const { server, client, states } = await setup(t, (conn) => {
    if (server.connections.length === 1) conn.hello();
    else conn.close(4401);
  });
  const first = await server.connection(0);
  first.close(4500);
  await until(() => client.state === "closed");
  await assert.rejects(client.call("x.any"), Unavailable);
  assert.equal(client.closeCode, 4401);
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "closed"]);
});

test("a ticket function is asked for a fresh ticket for every connection", options, async (t) => {
  let n = 0;
  const { server } = await setup(t, undefined, { ticket: async () => `t-${++n}` });
  const first = await server.connection(0);
  assert.equal(new URL(first.request.url, "ws://x").searchParams.get("ticket"), "t-1");
  first.kill();
  const second = await server.connection(1);
  assert.equal(new URL(second.request.url, "ws://x").searchParams.get("ticket"), "t-2");
});

test("backoff doubles from reconnectInitial up to reconnectMax", options, async (t) => {
  const random = Math.random;
  Math.random = () => 1; // the top of every jitter range
  t.after(() => (Math.random = random));
  const { server } = await setup(
    t,
    (conn) => (server.connections.length === 1 ? conn.hello() : conn.close(4503)),
    { reconnectInitial: 0.05, reconnectMax: 0.4 },
  );
  (await server.connection(0)).close(4503);
  await server.connection(6, { timeout: 8000 });
  const gaps = server.connections.slice(1).map((c, k) => c.openedAt - server.connections[k].openedAt);
  const ceilings = [50, 100, 200, 400, 400];
  for (const [k, ceiling] of ceilings.entries()) {
    const gap = gaps[k + 1];
    assert.ok(gap >= ceiling * 0.9 && gap <= ceiling + 300, `gap ${k + 1} is ${gap} ms, expected about ${ceiling}: ${gaps}`);
  }
});

test("full jitter spreads the reconnections of many clients after a server restart (no thundering herd)", options, async (t) => {
  const server = await fakeServer();
  const clients = Array.from({ length: 20 }, () => new StreamClient(server.url, { reconnectInitial: 1, reconnectMax: 1 }));
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  });
  await Promise.all(clients.map((c) => c.ready));
  const closedAt = Date.now();
  for (const conn of [...server.connections]) conn.close(4503);
  await server.connection(39, { timeout: 5000 });
  const delays = server.connections.slice(20).map((c) => c.openedAt - closedAt);
  const spread = Math.max(...delays) - Math.min(...delays);
  assert.ok(spread >= 300, `reconnections within ${spread} ms of each other: ${delays}`);
  assert.ok(Math.max(...delays) <= 1000 + 500, `a reconnection waited longer than the first ceiling: ${delays}`);
});

// -- resumable streams -----------------------------------------------------------------------------

test("a ready frame is consumed, not yielded, and gives the stream its position", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const stream = client.stream("x.subscribe");
  const items = collect(stream);
  const { id } = await conn.frame({ t: "call" });
  conn.send({ t: "ready", id, eid: "e:5" });
  await until(() => stream.ready);
  assert.equal(stream.lastEventId, "e:5");
  conn.send({ t: "next", id, d: "six", eid: "e:6" });
  conn.send({ t: "end", id });
  assert.deepEqual(await items, ["six"]);
  assert.deepEqual(stream.ready, { t: "ready", id, eid: "e:5" });
  assert.equal(stream.lastEventId, "e:6");
});

test("a resumable stream resumes after a reconnect from the last item handed to the caller", options, async (t) => {
  const { server, client, states } = await setup(t);
  const first = await server.connection(0);
  const stream = client.stream("x.subscribe", { topic: "t" });
  const one = stream.next();
  const call = await first.frame({ t: "call" });
  first.send({ t: "ready", id: call.id, eid: "e:0" });
  for (const k of [1, 2, 3]) first.send({ t: "next", id: call.id, d: k, eid: `e:${k}` });
  assert.deepEqual(await one, { value: 1, done: false }); // items 2 and 3 arrived but were not handed out
  await until(() => first.frames.length >= 1 && stream.lastEventId === "e:1");
  first.kill();
  const second = await server.connection(1);
  const again = await second.frame({ t: "call" });
  assert.equal(again.resume, "e:1");
  assert.equal(again.m, "x.subscribe");
  assert.deepEqual(again.a, { topic: "t" });
  assert.ok(again.id > call.id);
  assert.equal(again.credit, 64);
  second.send({ t: "ready", id: again.id, eid: "e:1", recovered: true });
  for (const k of [2, 3]) second.send({ t: "next", id: again.id, d: k, eid: `e:${k}` });
  second.send({ t: "end", id: again.id, d: "bye" });
  const rest = await collect(stream);
  assert.deepEqual(rest, [2, 3]);
  assert.equal(stream.result, "bye");
  assert.equal(stream.lastEventId, "e:3");
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "open"]);
});

test("a resumable stream lost before its first item resumes from the ready position", options, async (t) => {
  const { server, client } = await setup(t);
  const first = await server.connection(0);
  const stream = client.stream("x.subscribe");
  const item = stream.next();
  const call = await first.frame({ t: "call" });
  first.send({ t: "ready", id: call.id, eid: "e:9" });
  await until(() => stream.ready);
  first.kill();
  const second = await server.connection(1);
  const again = await second.frame({ t: "call" });
  assert.equal(again.resume, "e:9");
  second.send({ t: "ready", id: again.id, eid: "e:9", recovered: true });
  second.send({ t: "next", id: again.id, d: "ten", eid: "e:10" });
  assert.deepEqual(await item, { value: "ten", done: false });
  await stream.return();
  assert.deepEqual((await second.frame({ t: "cancel" })).id, again.id);
});

test("ready with recovered: false ends the stream with StateLost and cancels it", options, async (t) => {
  const { server, client } = await setup(t);
  const first = await server.connection(0);
  const stream = client.stream("x.subscribe");
  const one = stream.next();
  const call = await first.frame({ t: "call" });
  first.send({ t: "ready", id: call.id, eid: "a:0" });
  first.send({ t: "next", id: call.id, d: 1, eid: "a:1" });
  await one;
  first.kill();
  const second = await server.connection(1);
  const again = await second.frame({ t: "call" });
  assert.equal(again.resume, "a:1");
  second.send({ t: "ready", id: again.id, eid: "b:0", recovered: false });
  await assert.rejects(stream.next(), (error) => {
    assert.ok(error instanceof StateLost);
    assert.equal(error.code, "data_loss");
    assert.deepEqual(error.details, { resume: "a:1", eid: "b:0" });
    return true;
  });
  assert.equal((await second.frame({ t: "cancel" })).id, again.id);
});

test("a resumed call whose first frame is an item, not ready, ends with StateLost: the server did not confirm", options, async (t) => {
  const { server, client } = await setup(t);
  const first = await server.connection(0);
  const stream = client.stream("x.subscribe");
  const one = stream.next();
  const call = await first.frame({ t: "call" });
  first.send({ t: "ready", id: call.id, eid: "a:0" });
  first.send({ t: "next", id: call.id, d: 1, eid: "a:1" });
  await one;
  first.kill();
  const second = await server.connection(1);
  const again = await second.frame({ t: "call" });
  second.send({ t: "next", id: again.id, d: 5, eid: "a:5" }); // a server that ignored `resume`
  await assert.rejects(stream.next(), (error) => {
    assert.ok(error instanceof StateLost);
    assert.deepEqual(error.details, { resume: "a:1", eid: "a:5" });
    assert.match(error.message, /did not confirm/);
    return true;
  });
  assert.equal((await second.frame({ t: "cancel" })).id, again.id);
});

test("items with event ids but no ready frame do not make a stream resumable: it fails with unavailable", options, async (t) => {
  const { server, client } = await setup(t);
  const first = await server.connection(0);
  const stream = client.stream("x.subscribe");
  const one = stream.next();
  const call = await first.frame({ t: "call" });
  first.send({ t: "next", id: call.id, d: 1, eid: "a:1" });
  await one;
  assert.equal(stream.lastEventId, "a:1", "the id is kept for a resume by hand");
  first.kill();
  await assert.rejects(stream.next(), Unavailable);
  const second = await server.connection(1);
  await sleep(200);
  assert.equal(second.frames.filter((f) => f.t === "call").length, 0, "not re-issued");
});

test("the resume option asks for items after that event id from the start", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const stream = client.stream("x.subscribe", {}, { resume: "e:41" });
  const item = stream.next();
  const call = await conn.frame({ t: "call" });
  assert.equal(call.resume, "e:41");
  conn.send({ t: "ready", id: call.id, eid: "e:41", recovered: true });
  conn.send({ t: "next", id: call.id, d: 42, eid: "e:42" });
  assert.equal((await item).value, 42);
  await stream.return();
});

test("a stream without event ids fails with unavailable when the connection drops", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const stream = client.stream("x.count");
  const one = stream.next();
  const call = await conn.frame({ t: "call" });
  conn.send({ t: "next", id: call.id, d: 0 });
  await one;
  conn.kill();
  await assert.rejects(stream.next(), (error) => error instanceof Unavailable && error.details.close_code === 1006);
  const second = await server.connection(1);
  await sleep(200);
  assert.equal(second.frames.filter((f) => f.t === "call").length, 0, "not re-issued");
});

// -- odds and ends -----------------------------------------------------------------------------------

test("an error frame for no call is dispatched as an error event", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  await client.ready;
  const seen = new Promise((resolve) => client.addEventListener("error", (event) => resolve(event.detail), { once: true }));
  conn.send({ t: "error", id: null, code: "invalid_argument", message: "bad frame", details: { id: 9 } });
  const error = await seen;
  assert.equal(error.code, "invalid_argument");
  assert.deepEqual(error.details, { id: 9 });
});

test("frames for unknown calls, unknown frame types and binary messages are ignored", options, async (t) => {
  const { server, client } = await setup(t);
  const conn = await server.connection(0);
  const result = client.call("x.unary");
  const { id } = await conn.frame({ t: "call" });
  conn.send({ t: "next", id: 999, d: "stray" });
  conn.send({ t: "future-frame", id });
  conn.send("not json");
  conn.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  conn.send({ t: "end", id, d: "ok" });
  assert.equal(await result, "ok");
  assert.equal(client.state, "open");
});

test("the ws package works as the WebSocket class and sends extra headers", options, async (t) => {
  const { server, client } = await setup(t, undefined, { WebSocket, headers: { "X-Trace": "abc" }, token: "tok" });
  const conn = await server.connection(0);
  assert.equal(conn.request.headers["x-trace"], "abc");
  assert.equal(conn.request.headers.authorization, "Bearer tok");
  const result = client.call("x.unary");
  const { id } = await conn.frame({ t: "call" });
  conn.send({ t: "end", id, d: 1 });
  assert.equal(await result, 1);
});

test("a 4401 close before hello rejects ready with unauthenticated and does not reconnect", options, async (t) => {
  const { server, client } = await setup(t, (conn) => conn.close(4401));
  await assert.rejects(client.ready, Unauthenticated);
  await sleep(150);
  assert.equal(server.connections.length, 1);
});

test("send() and end() on a server stream are refused: it has no client half", options, async (t) => {
  const { client } = await setup(t);
  const stream = client.stream("x.items");
  await assert.rejects(stream.send(1), TypeError);
  await assert.rejects(stream.end(), TypeError);
});
