// The call state machine (call.js) with no socket: a fake channel records what
// a call sends, and the test feeds it the server's frames.
import assert from "node:assert/strict";
import { test } from "node:test";

import { CALL_TRANSITIONS, Call, Stream } from "../../streaming_app/static/streaming_app/call.js";
import { NotFound, StateLost } from "../../streaming_app/static/streaming_app/errors.js";

/** A channel that puts every call on the wire at once, as an open connection does. */
function channel() {
  let lastId = 0;
  const sent = [];
  const forgotten = [];
  const channel = {
    sent,
    forgotten,
    enqueue: (call) => call._issue(++lastId, 2),
    send: (frame) => sent.push(frame),
    forget: (call) => forgotten.push(call),
  };
  return channel;
}

const client = { window: 4 };

test("every state's transitions lead to states, and done is final", () => {
  const states = Object.keys(CALL_TRANSITIONS);
  assert.deepEqual(states, ["new", "waiting", "resuming", "running", "half_closed", "ended", "done"]);
  for (const targets of Object.values(CALL_TRANSITIONS)) for (const target of targets) assert.ok(states.includes(target));
  assert.deepEqual(CALL_TRANSITIONS.done, []);
});

test("an illegal transition throws, saying where the call was and what was expected", () => {
  const call = new Call(client, channel(), "open", "x.bidi");
  assert.throws(() => call._moveTo("running"), /x\.bidi\): cannot go from new to running; expected waiting, done/);
  call.cancel();
  assert.throws(() => call._moveTo("waiting"), /cannot go from done to waiting; expected nothing \(it is final\)/);
});

test("a bidirectional call goes new → running → half_closed → ended → done", async () => {
  const wire = channel();
  const call = new Call(client, wire, "open", "x.bidi");
  assert.equal(call.state, "new");
  await call._start();
  assert.equal(call.state, "running");
  await call.send("a");
  await call.end();
  assert.equal(call.state, "half_closed");
  await assert.rejects(call.send("b"), /end\(\) was called/);
  call._deliver({ t: "next", id: 1, d: "A" });
  call._deliver({ t: "end", id: 1, d: 7 });
  assert.equal(call.state, "ended", "the server is done; an item is still unread");
  assert.deepEqual(wire.forgotten, [call]);
  const items = [];
  for await (const item of call) items.push(item);
  assert.deepEqual(items, ["A"]);
  assert.equal(call.state, "done");
  assert.deepEqual(wire.sent.map((frame) => frame.t), ["call", "next", "end"]);
});

test("an error frame ends the call; the caller sees its typed error, then the call is done", async () => {
  const call = new Call(client, channel(), "unary", "x.unary");
  const result = call.result();
  call._deliver({ t: "error", id: 1, code: "not_found", message: "gone" });
  await assert.rejects(result, NotFound);
  assert.equal(call.state, "done");
});

test("a stream sent with resume is resuming until ready; an item first ends it with StateLost", async () => {
  const confirmed = new Stream(client, channel(), "x.items", {}, { resume: "e:1" });
  confirmed._start();
  assert.equal(confirmed.state, "resuming");
  confirmed._deliver({ t: "ready", id: 1, eid: "e:1", recovered: true });
  assert.equal(confirmed.state, "running");

  const wire = channel();
  const unconfirmed = new Stream(client, wire, "x.items", {}, { resume: "e:1" });
  unconfirmed._start();
  unconfirmed._deliver({ t: "next", id: 1, d: 1, eid: "e:2" });
  assert.equal(unconfirmed.state, "ended");
  assert.deepEqual(wire.sent.at(-1), { t: "cancel", id: 1 });
  await assert.rejects(unconfirmed.next(), StateLost);
  assert.equal(unconfirmed.state, "done");
});

test("a resumable stream whose connection drops waits for the next one; others end", () => {
  const resumable = new Stream(client, channel(), "x.items");
  resumable._start();
  resumable._deliver({ t: "ready", id: 1, eid: "e:5" });
  assert.equal(resumable._connectionLost(new Error("lost"), true), true);
  assert.equal(resumable.state, "waiting");

  const plain = new Stream(client, channel(), "x.items");
  plain._start();
  assert.equal(plain._connectionLost(new Error("lost"), true), false);
  assert.equal(plain.state, "ended");
});

test("cancelling a call that was never started leaves it done, and starting it then sends nothing", async () => {
  const wire = channel();
  const stream = new Stream(client, wire, "x.items");
  stream.cancel();
  assert.equal(stream.state, "done");
  assert.deepEqual(await stream.next(), { value: undefined, done: true });
  assert.deepEqual(wire.sent, []);
});
