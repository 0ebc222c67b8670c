// client.js against a real daphne server of the example project (the interop
// service of shared/interop.md, plus the flowprobe namespace of
// tests/probes/flowprobe_asgi.py). tests/e2e/test_js_client.py starts the server and
// passes its URL and credentials in the environment.
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";

import {
  ERROR_CLASSES,
  Internal,
  InvalidArgument,
  NotFound,
  ResourceExhausted,
  StreamClient,
  StreamError,
  Unauthenticated,
  Unavailable,
  Unimplemented,
  ticketFetcher,
} from "../../streaming_app/static/streaming_app/client.js";
import { cleanups, env, needsServer, sleep, uniqueTag, until } from "./helpers.mjs";

const options = { skip: needsServer, timeout: 30000 };

/** Run `body(client)` with a client on the real server (global WebSocket unless `WebSocket` is given). */
async function withClient(body, clientOptions = {}) {
  const client = new StreamClient(env.wsUrl, clientOptions);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

// -- unary -----------------------------------------------------------------------------------

test("a unary call resolves with the result", options, () =>
  withClient(async (client) => {
    assert.deepEqual(await client.call("interop.unary", { payload: "hi" }), { payload: "hi" });
  }));

test("interop.empty resolves with an empty object", options, () =>
  withClient(async (client) => {
    assert.deepEqual(await client.call("interop.empty"), {});
  }));

test("interop.big returns a large result intact", options, () =>
  withClient(async (client) => {
    const { data } = await client.call("interop.big", { size: 500000 });
    assert.equal(data.length, 500000);
    assert.equal(data, "x".repeat(500000));
  }));

test("a result over the frame limit fails that call with resource_exhausted and the connection stays open", options, () =>
  withClient(async (client) => {
    await assert.rejects(client.call("interop.big", { size: 1000000 }), (error) => {
      assert.ok(error instanceof ResourceExhausted);
      assert.equal(error.details.max_frame, client.hello.limits.max_frame);
      return true;
    });
    assert.deepEqual(await client.call("interop.empty"), {});
    assert.equal(client.state, "open");
  }));

test("an item over the frame limit is refused by the client, not sent to close the connection", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.echo");
    await assert.rejects(call.send("x".repeat(client.hello.limits.max_frame)), ResourceExhausted);
    await call.send("small");
    await call.end();
    const replies = [];
    for await (const reply of call) replies.push(reply);
    assert.deepEqual(replies, ["small"]);
    assert.equal(client.state, "open");
  }));

test("many calls run side by side on one connection", options, () =>
  withClient(async (client) => {
    const unary = Array.from({ length: 20 }, (_, k) => client.call("interop.unary", { payload: `p${k}` }));
    const counted = (async () => {
      const items = [];
      for await (const item of client.stream("interop.count", { n: 30 }, { window: 4 })) items.push(item.i);
      return items;
    })();
    const results = await Promise.all(unary);
    assert.deepEqual(results.map((r) => r.payload), Array.from({ length: 20 }, (_, k) => `p${k}`));
    assert.deepEqual(await counted, Array.from({ length: 30 }, (_, k) => k));
  }));

// -- server streams ----------------------------------------------------------------------------

test("a stream yields every item, then exposes its return value as stream.result", options, () =>
  withClient(async (client) => {
    const stream = client.stream("interop.count", { n: 10 }, { window: 4 });
    const items = [];
    for await (const item of stream) items.push(item.i);
    assert.deepEqual(items, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(stream.result, { total: 10 });
  }));

test("interop.count starts at start", options, () =>
  withClient(async (client) => {
    const items = [];
    for await (const item of client.stream("interop.count", { n: 3, start: 5 })) items.push(item.i);
    assert.deepEqual(items, [5, 6, 7]);
  }));

test("stream.result before the end of iteration throws", options, () =>
  withClient(async (client) => {
    const stream = client.stream("interop.count", { n: 3 });
    await stream.next();
    assert.throws(() => stream.result, /once iteration has finished/);
    await stream.return();
  }));

test("a stream failing after some items yields them, then throws the typed error", options, () =>
  withClient(async (client) => {
    const items = [];
    await assert.rejects(
      (async () => {
        for await (const item of client.stream("interop.fail_after", { n: 2, code: "not_found" })) items.push(item);
      })(),
      NotFound,
    );
    assert.deepEqual(items, [{ i: 0 }, { i: 1 }]);
  }));

test("invalid arguments reject with invalid_argument and the server's details", options, () =>
  withClient(async (client) => {
    await assert.rejects(client.call("interop.count", { n: "x" }), (error) => {
      assert.ok(error instanceof InvalidArgument);
      assert.deepEqual(error.details, { errors: { n: ["Must be an integer."] } });
      return true;
    });
    await assert.rejects(
      (async () => {
        for await (const _ of client.stream("interop.count", { n: -1 }));
      })(),
      InvalidArgument,
    );
  }));

// -- cancellation and deadlines --------------------------------------------------------------

test("break out of a stream cancels it on the server (its finally runs)", options, () =>
  withClient(async (client) => {
    const tag = uniqueTag("js-break");
    for await (const item of client.stream("interop.forever", { tag })) {
      if (item.i === 2) break;
    }
    assert.equal(await cleanups(client, tag), 1);
  }));

test("stream.return() cancels it on the server", options, () =>
  withClient(async (client) => {
    const tag = uniqueTag("js-return");
    const stream = client.stream("interop.forever", { tag });
    assert.deepEqual((await stream.next()).value, { i: 0 });
    assert.deepEqual(await stream.return(), { value: undefined, done: true });
    assert.equal(await cleanups(client, tag), 1);
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  }));

test("an AbortSignal cancels the stream on the server and the loop rejects with its reason", options, () =>
  withClient(async (client) => {
    const tag = uniqueTag("js-abort");
    const controller = new AbortController();
    const seen = [];
    await assert.rejects(
      (async () => {
        for await (const item of client.stream("interop.forever", { tag, interval_ms: 20 }, { signal: controller.signal })) {
          seen.push(item.i);
          if (item.i === 1) controller.abort();
        }
      })(),
      { name: "AbortError" },
    );
    assert.deepEqual(seen, [0, 1]);
    assert.equal(await cleanups(client, tag), 1);
  }));

test("an AbortSignal aborted while the stream waits for an item rejects that wait", options, () =>
  withClient(async (client) => {
    const tag = uniqueTag("js-abort-wait");
    const stream = client.stream("interop.forever", { tag, interval_ms: 5000 }, { signal: AbortSignal.timeout(300) });
    assert.deepEqual((await stream.next()).value, { i: 0 });
    await assert.rejects(stream.next(), { name: "TimeoutError" });
    assert.equal(await cleanups(client, tag), 1);
  }));

test("an already aborted signal rejects the call without sending it", options, () =>
  withClient(async (client) => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await assert.rejects(client.call("interop.empty", {}, { signal: controller.signal }), /stop/);
    assert.deepEqual(await client.call("interop.empty"), {});
  }));

test("a deadline ends a stream with deadline_exceeded and stops its handler", options, () =>
  withClient(async (client) => {
    const tag = uniqueTag("js-deadline");
    const started = Date.now();
    await assert.rejects(
      (async () => {
        for await (const _ of client.stream("interop.forever", { tag, interval_ms: 20 }, { timeout: 0.3 }));
      })(),
      (error) => error instanceof StreamError && error.code === "deadline_exceeded",
    );
    assert.ok(Date.now() - started >= 250, "not before the deadline");
    assert.equal(await cleanups(client, tag), 1);
  }));

// -- client streams and bidirectional calls -----------------------------------------------------

test("a client stream sends more items than the client window and gets the result", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.sum");
    assert.equal(client.clientWindow, 64);
    for (let v = 0; v < 200; v++) await call.send({ v });
    await call.end();
    assert.deepEqual(await call.result(), { sum: 19900, count: 200 });
  }));

test("a malformed client-stream item fails the call with invalid_argument", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.sum");
    await call.send({ v: "not a number" });
    await call.end();
    await assert.rejects(call.result(), InvalidArgument);
  }));

test("a bidirectional call echoes items in order", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.echo");
    for (const word of ["a", "b", "c"]) await call.send(word);
    await call.end();
    const replies = [];
    for await (const reply of call) replies.push(reply);
    assert.deepEqual(replies, ["a", "b", "c"]);
    assert.equal(await call.result(), null);
  }));

test("a bidirectional call interleaves sends and replies", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.echo");
    const replies = call[Symbol.asyncIterator]();
    for (let k = 0; k < 5; k++) {
      await call.send({ k });
      assert.deepEqual((await replies.next()).value, { k });
    }
    await call.end();
    assert.equal((await replies.next()).done, true);
  }));

test("breaking out of a bidirectional call cancels it and the connection carries on", options, () =>
  withClient(async (client) => {
    const call = await client.open("interop.echo");
    await call.send(1);
    for await (const reply of call) {
      assert.equal(reply, 1);
      break;
    }
    await assert.rejects(call.send(2), /has ended/);
    assert.deepEqual(await client.call("interop.empty"), {});
  }));

// -- errors ------------------------------------------------------------------------------------

const ALL_CODES = [
  "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
  "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
  "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
];

for (const code of ALL_CODES) {
  test(`error code ${code} rejects with its own class carrying code, message and details`, options, () =>
    withClient(async (client) => {
      await assert.rejects(client.call("interop.fail", { code, message: `m-${code}` }), (error) => {
        assert.ok(error instanceof ERROR_CLASSES[code], `${error.name} is not ${ERROR_CLASSES[code].name}`);
        assert.ok(error instanceof StreamError && error instanceof Error);
        assert.equal(error.code, code);
        assert.equal(error.message, `m-${code}`);
        assert.deepEqual(error.details, {});
        return true;
      });
    }));
}

test("an unknown method rejects with unimplemented", options, () =>
  withClient(async (client) => {
    await assert.rejects(client.call("interop.nope"), Unimplemented);
  }));

test("a crash in the handler is internal, with none of its text", options, () =>
  withClient(async (client) => {
    await assert.rejects(client.call("interop.crash"), (error) => {
      assert.ok(error instanceof Internal);
      assert.ok(!error.message.includes("secret"));
      return true;
    });
  }));

// -- flow control --------------------------------------------------------------------------------

test("a slow consumer with window 8 never has more than 8 items in flight", options, () =>
  withClient(async (client) => {
    const key = uniqueTag("js-slow");
    let consumed = 0;
    const inFlight = [];
    for await (const _ of client.stream("flowprobe.items", { key, n: 60 }, { window: 8 })) {
      consumed += 1;
      await sleep(10); // a slow consumer: without credit the server would run far ahead
      const { produced } = await client.call("flowprobe.produced", { key });
      inFlight.push(produced - consumed);
    }
    assert.equal(consumed, 60);
    assert.ok(Math.max(...inFlight) <= 8, `in flight: ${inFlight}`);
    assert.ok(Math.max(...inFlight) >= 4, `the window is used, not just respected: ${inFlight}`);
  }));

test("a stream nobody reads stops at its window", options, () =>
  withClient(async (client) => {
    const key = uniqueTag("js-stalled");
    const stream = client.stream("flowprobe.items", { key, n: 100 }, { window: 5 });
    await stream.next();
    await sleep(300);
    const { produced } = await client.call("flowprobe.produced", { key });
    assert.ok(produced <= 1 + 5, `produced ${produced}`);
    await stream.return();
  }));

// -- authentication ------------------------------------------------------------------------------

test("an anonymous connection gets unauthenticated from methods that need a user", options, () =>
  withClient(async (client) => {
    await assert.rejects(client.call("interop.whoami"), Unauthenticated);
    await assert.rejects(client.call("interop.staff_only"), Unauthenticated);
  }));

test("Node sends a bearer token through the ws package", options, () =>
  withClient(
    async (client) => {
      assert.deepEqual(await client.call("interop.whoami"), { username: "carol", is_staff: false });
      await assert.rejects(client.call("interop.staff_only"), { code: "permission_denied" });
    },
    { WebSocket, token: env.token },
  ));

test("a staff token passes interop.staff_only", options, () =>
  withClient(
    async (client) => {
      assert.deepEqual(await client.call("interop.staff_only"), { ok: true });
    },
    { WebSocket, token: env.staffToken },
  ));

test("a session cookie authenticates the handshake", options, () =>
  withClient(
    async (client) => {
      assert.equal((await client.call("interop.whoami")).username, "carol");
    },
    { WebSocket, headers: { Cookie: `sessionid=${env.session}` } },
  ));

test("an invalid token closes the client with unauthenticated: ready and calls reject", options, async () => {
  const client = new StreamClient(env.wsUrl, { WebSocket, token: "not-a-token" });
  const states = [];
  client.onStateChange((state) => states.push(state));
  await assert.rejects(client.ready, Unauthenticated);
  await assert.rejects(client.call("interop.empty"), Unavailable);
  assert.equal(client.state, "closed");
  assert.equal(client.closeCode, 4401);
  assert.deepEqual(states, ["connecting", "closed"]);
  await client.close();
});

test("Node's built-in WebSocket sends a bearer token: no ws package needed", options, () =>
  withClient(
    async (client) => {
      assert.deepEqual(await client.call("interop.whoami"), { username: "carol", is_staff: false });
    },
    { token: env.token },
  ));

test("Node's built-in WebSocket sends other handshake headers too (a session cookie)", options, () =>
  withClient(
    async (client) => {
      assert.equal((await client.call("interop.whoami")).username, "carol");
    },
    { headers: { Cookie: `sessionid=${env.session}` } },
  ));

test("an invalid token over Node's built-in WebSocket closes the client with unauthenticated", options, async () => {
  const client = new StreamClient(env.wsUrl, { token: "not-a-token" });
  await assert.rejects(client.ready, Unauthenticated);
  assert.equal(client.closeCode, 4401);
  await client.close();
});

/** A CSRF cookie as a browser gets it from a page with a form. */
async function csrfToken() {
  const response = await fetch(`${env.httpUrl}/admin/login/`);
  assert.equal(response.status, 200);
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith("csrftoken="));
  return cookie.split(";")[0].split("=")[1];
}

test("ticket authentication: a fresh ticket from the ticket endpoint for every connection", options, async () => {
  const csrf = await csrfToken();
  let issued = 0;
  const fetchTicket = ticketFetcher(`${env.httpUrl}/streams/_ticket`, {
    csrfToken: csrf,
    headers: { Cookie: `sessionid=${env.session}; csrftoken=${csrf}` },
  });
  const ticket = async () => {
    issued += 1;
    return fetchTicket();
  };
  await withClient(async (client) => {
    assert.equal((await client.call("interop.whoami")).username, "carol");
  }, { ticket });
  assert.equal(issued, 1);
});

test("a used ticket is refused: the client closes with unauthenticated", options, async () => {
  const csrf = await csrfToken();
  const ticket = await ticketFetcher(`${env.httpUrl}/streams/_ticket`, {
    csrfToken: csrf,
    headers: { Cookie: `sessionid=${env.session}; csrftoken=${csrf}` },
  })();
  await withClient(async (client) => assert.equal((await client.call("interop.whoami")).username, "carol"), { ticket });
  const again = new StreamClient(env.wsUrl, { ticket });
  await assert.rejects(again.ready, Unauthenticated);
  await again.close();
});

test("the ticket endpoint without a session rejects with unauthenticated", options, async () => {
  const csrf = await csrfToken();
  const fetchTicket = ticketFetcher(`${env.httpUrl}/streams/_ticket`, { csrfToken: csrf, headers: { Cookie: `csrftoken=${csrf}` } });
  await assert.rejects(fetchTicket(), (error) => {
    assert.ok(error instanceof Unauthenticated);
    assert.equal(error.details.status, 401);
    return true;
  });
});

// -- the client's own state ----------------------------------------------------------------------

test("state goes connecting, open, closed; a closed client refuses new calls", options, async () => {
  const states = [];
  const client = new StreamClient(env.wsUrl, { onStateChange: (state) => states.push(state) });
  const hello = await client.ready;
  assert.equal(hello.v, 1);
  assert.equal(client.state, "open");
  await client.close();
  assert.deepEqual(states, ["connecting", "open", "closed"]);
  await assert.rejects(client.call("interop.empty"), Unavailable);
});

test("close() fails the calls still open with unavailable", options, async () => {
  const client = new StreamClient(env.wsUrl);
  const stream = client.stream("interop.forever", { interval_ms: 1000 });
  await stream.next();
  const failed = assert.rejects(stream.next(), Unavailable); // the next item is a second away
  await client.close();
  await failed;
});

test("calls made before the connection opens wait for it", options, async () => {
  const client = new StreamClient(env.wsUrl);
  assert.equal(client.state, "connecting");
  const results = await Promise.all([client.call("interop.unary", { payload: "early" }), client.call("interop.empty")]);
  assert.deepEqual(results, [{ payload: "early" }, {}]);
  await client.close();
});

test("a client that cannot connect at all closes with unavailable", { timeout: 10000 }, async () => {
  const client = new StreamClient("ws://127.0.0.1:9/ws/");
  await assert.rejects(client.ready, Unavailable);
  await assert.rejects(client.call("interop.empty"), Unavailable);
  assert.equal(client.state, "closed");
});

// -- topics ---------------------------------------------------------------------------------------

test("interop.subscribe yields what interop.publish publishes, in order, and lastEventId follows the caller", options, (t) =>
  withClient(async (client) => {
    const topic = uniqueTag("js-topic");
    try {
      await client.call("interop.publish", { topic, data: { warmup: -1 } });
    } catch (error) {
      if (error instanceof Unimplemented) return t.skip("this server has no topics (interop.publish is unimplemented)");
      throw error;
    }
    const stream = client.stream("interop.subscribe", { topic });
    const received = [];
    const consumer = (async () => {
      for await (const item of stream) {
        received.push(item);
        if (item.k === 2) break; // cancels the subscription
      }
    })();
    // Live once an event published after subscribing arrives (nothing
    // published before is sent by a server without topic history).
    let n = 0;
    await until(async () => {
      await client.call("interop.publish", { topic, data: { warmup: n++ } });
      return received.length > 0;
    }, { timeout: 10000, every: 50, what: "the subscription to go live" });
    const published = [];
    for (const k of [0, 1, 2]) published.push((await client.call("interop.publish", { topic, data: { k } })).eid);
    await consumer;
    assert.deepEqual(received.filter((item) => "k" in item), [{ k: 0 }, { k: 1 }, { k: 2 }]);
    assert.ok(received.every((item) => "k" in item || "warmup" in item), "only published data, never a ready frame");
    assert.equal(stream.lastEventId, published[2], "the event id of the last item handed out");
  }));
