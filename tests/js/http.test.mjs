// sseStream against the server's real HTTP transport (`/streams/<method>`,
// Server-Sent Events). Every test skips while the server has none (it was
// built on another branch); sse.test.mjs covers the helper against a test
// server in any case.
import assert from "node:assert/strict";
import { before, test } from "node:test";

import {
  DeadlineExceeded,
  InvalidArgument,
  NotFound,
  ResourceExhausted,
  StreamClient,
  Unauthenticated,
  httpError,
  sseStream,
} from "../../streaming_app/static/streaming_app/client.js";
import { cleanups, env, needsServer, uniqueTag, until } from "./helpers.mjs";

let missing = needsServer;
before(async () => {
  if (missing) return;
  const probe = await fetch(`${env.httpUrl}/streams/interop.count`, {
    method: "POST",
    headers: { Accept: "text/event-stream", "Content-Type": "application/json" },
    body: '{"n": 0}',
  });
  await probe.body?.cancel();
  if (probe.status === 404) missing = "this server has no HTTP transport (/streams/<method> answers 404)";
});

const streams = (method) => `${env.httpUrl}/streams/${method}`;

/** `test()` that skips when the HTTP transport is missing (known only once `before` ran). */
function httpTest(name, body) {
  test(name, { skip: needsServer, timeout: 30000 }, async (t) => {
    if (missing) return t.skip(missing);
    await body(t);
  });
}

async function withClient(body) {
  const client = new StreamClient(env.wsUrl);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

httpTest("a POSTed server stream yields its items, then its result", async () => {
  const stream = sseStream(streams("interop.count"), { n: 3 });
  const items = [];
  for await (const item of stream) items.push(item.i);
  assert.deepEqual(items, [0, 1, 2]);
  assert.deepEqual(stream.result, { total: 3 });
});

httpTest("a GET server stream takes its arguments from the query string", async () => {
  const items = [];
  for await (const item of sseStream(streams("interop.count"), { n: 2, start: 5 }, { method: "GET" })) items.push(item.i);
  assert.deepEqual(items, [5, 6]);
});

httpTest("invalid arguments answer 400 with a JSON error: InvalidArgument with the server's details", async () => {
  await assert.rejects(sseStream(streams("interop.count"), { n: "x" }).next(), (error) => {
    assert.ok(error instanceof InvalidArgument);
    assert.deepEqual(error.details, { errors: { n: ["Must be an integer."] }, status: 400 });
    return true;
  });
});

httpTest("an error event after some items ends the stream with its typed error", async () => {
  const items = [];
  await assert.rejects(
    (async () => {
      for await (const item of sseStream(streams("interop.fail_after"), { n: 2, code: "not_found" })) items.push(item);
    })(),
    NotFound,
  );
  assert.deepEqual(items, [{ i: 0 }, { i: 1 }]);
});

httpTest("a throttled call answers 429: httpError gives ResourceExhausted with the retryAfter of its body", async () => {
  const key = uniqueTag("limited-http");
  const post = () => fetch(streams("interop.limited"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key }) });
  for (let i = 0; i < 3; i++) assert.equal((await post()).status, 200);
  const refused = await post();
  assert.equal(refused.status, 429);
  const header = Number(refused.headers.get("Retry-After"));
  const error = await httpError(refused);
  assert.ok(error instanceof ResourceExhausted);
  assert.equal(error.details.status, 429);
  assert.ok(error.retryAfter > 0 && error.retryAfter <= 60, String(error.retryAfter));
  assert.equal(header, Math.ceil(error.retryAfter)); // the header is the body's seconds, rounded up
});

httpTest("an invalid bearer token is refused with unauthenticated", async () => {
  await assert.rejects(sseStream(streams("interop.count"), { n: 1 }, { token: "not-a-token" }).next(), (error) => {
    assert.ok(error instanceof Unauthenticated);
    assert.equal(error.details.status, 401);
    return true;
  });
});

httpTest("break closes the response and the server stops the handler", () =>
  withClient(async (client) => {
    const tag = uniqueTag("sse-break");
    for await (const item of sseStream(streams("interop.forever"), { tag, interval_ms: 20 })) {
      if (item.i === 2) break;
    }
    assert.equal(await cleanups(client, tag), 1);
  }));

httpTest("an AbortSignal closes the response, rejects with its reason, and the server stops the handler", () =>
  withClient(async (client) => {
    const tag = uniqueTag("sse-abort");
    const controller = new AbortController();
    await assert.rejects(
      (async () => {
        for await (const item of sseStream(streams("interop.forever"), { tag, interval_ms: 20 }, { signal: controller.signal })) {
          if (item.i === 1) controller.abort();
        }
      })(),
      { name: "AbortError" },
    );
    assert.equal(await cleanups(client, tag), 1);
  }));

httpTest("a timeout ends the stream with deadline_exceeded and the server stops the handler", () =>
  withClient(async (client) => {
    const tag = uniqueTag("sse-timeout");
    await assert.rejects(
      (async () => {
        for await (const _ of sseStream(streams("interop.forever"), { tag, interval_ms: 20 }, { timeout: 0.3 }));
      })(),
      DeadlineExceeded,
    );
    assert.equal(await cleanups(client, tag), 1);
  }));

httpTest("topic events over SSE carry their event id: lastEventId is the id interop.publish gave", () =>
  withClient(async (client) => {
    const topic = uniqueTag("sse-topic");
    const stream = sseStream(streams("interop.subscribe"), { topic });
    const received = [];
    const consumer = (async () => {
      for await (const item of stream) {
        received.push(item);
        if (item.k === 1) break;
      }
    })();
    let n = 0;
    await until(async () => {
      await client.call("interop.publish", { topic, data: { warmup: n++ } });
      return received.length > 0;
    }, { timeout: 10000, every: 50, what: "the subscription to go live" });
    const { eid } = await client.call("interop.publish", { topic, data: { k: 1 } });
    await consumer;
    assert.equal(stream.lastEventId, eid);
  }));
