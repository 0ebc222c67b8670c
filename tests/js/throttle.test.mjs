// The server's throttling hints in the JavaScript client: `retryAfter` on the
// error of a throttled call, and the opt-in `retryThrottled` of unary calls.
// Against the real server tests/e2e/test_js_client.py starts (interop.limited:
// 3 calls a minute per key) and a daphne this file starts with
// probes.limits_settings (20 calls a second per connection).
import assert from "node:assert/strict";
import { test } from "node:test";
import WebSocket from "ws";

import { ResourceExhausted, StreamClient } from "../../streaming_app/static/streaming_app/client.js";
import { env, freePort, needsServer, startDaphne, uniqueTag } from "./helpers.mjs";

const options = { skip: needsServer, timeout: 30000 };

/** A client of the shared server, closed when the test ends. */
function clientFor(t, url, clientOptions = {}) {
  const client = new StreamClient(url, clientOptions);
  t.after(() => client.close());
  return client;
}

/** Spend the 3 calls a minute interop.limited allows for `key`. */
async function exhaust(client, key) {
  for (let i = 0; i < 3; i++) assert.deepEqual(await client.call("interop.limited", { key }), { ok: true });
}

// -- retryAfter on the error ------------------------------------------------------------------

test("a throttled call rejects with ResourceExhausted whose retryAfter is the server's retry_after", options, async (t) => {
  const client = clientFor(t, env.wsUrl);
  const key = uniqueTag("limited");
  await exhaust(client, key);
  await assert.rejects(client.call("interop.limited", { key }), (error) => {
    assert.ok(error instanceof ResourceExhausted);
    assert.equal(typeof error.retryAfter, "number");
    assert.ok(error.retryAfter > 0 && error.retryAfter <= 60, String(error.retryAfter));
    assert.equal(error.retryAfter, error.details.retry_after);
    return true;
  });
});

test("an error without a hint has a null retryAfter", options, async (t) => {
  const client = clientFor(t, env.wsUrl);
  await assert.rejects(client.call("interop.fail", { code: "resource_exhausted" }), (error) => {
    assert.ok(error instanceof ResourceExhausted);
    assert.equal(error.retryAfter, null);
    return true;
  });
});

// -- retryThrottled: off by default, bounded ----------------------------------------------------

test("retryThrottled is off unless asked for; {} takes the defaults", options, (t) => {
  assert.equal(clientFor(t, env.wsUrl).retryThrottled, null);
  assert.deepEqual(clientFor(t, env.wsUrl, { retryThrottled: {} }).retryThrottled, { retries: 3, maxWait: 30 });
});

test("retryThrottled refuses bounds that are not numbers of 0 or more", () => {
  for (const bounds of [{ retries: -1 }, { retries: 1.5 }, { maxWait: -1 }, { maxWait: Number.NaN }]) {
    assert.throws(() => new StreamClient("ws://127.0.0.1:9/ws/", { retryThrottled: bounds, reconnect: false }), RangeError, JSON.stringify(bounds));
  }
});

test("a hint longer than maxWait rejects at once", options, async (t) => {
  const client = clientFor(t, env.wsUrl, { retryThrottled: { maxWait: 5 } });
  const key = uniqueTag("limited");
  await exhaust(client, key);
  const started = Date.now();
  await assert.rejects(client.call("interop.limited", { key }), (error) => error instanceof ResourceExhausted && error.retryAfter > 5);
  assert.ok(Date.now() - started < 2000, `waited ${Date.now() - started} ms`);
});

test("a hint past the call's timeout rejects at once", options, async (t) => {
  const client = clientFor(t, env.wsUrl, { retryThrottled: { maxWait: 120 } });
  const key = uniqueTag("limited");
  await exhaust(client, key);
  const started = Date.now();
  await assert.rejects(client.call("interop.limited", { key }, { timeout: 3 }), ResourceExhausted);
  assert.ok(Date.now() - started < 2000, `waited ${Date.now() - started} ms`);
});

test("aborting the signal while the call waits to retry rejects with its reason at once", options, async (t) => {
  const client = clientFor(t, env.wsUrl, { retryThrottled: { maxWait: 120 } });
  const key = uniqueTag("limited");
  await exhaust(client, key);
  const controller = new AbortController();
  const started = Date.now();
  const call = client.call("interop.limited", { key }, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("gave up")), 300);
  await assert.rejects(call, { message: "gave up" });
  assert.ok(Date.now() - started < 2000, `waited ${Date.now() - started} ms`);
});

// Against a daphne allowing 20 calls a second per connection: refusals carry retry_after < 1 s.

const rateLimited = {
  skip: env.python && env.root ? false : "needs STREAMING_PYTHON and STREAMING_ROOT: run through tests/e2e/test_js_client.py",
  timeout: 90000,
};

/** The `ws` WebSocket, counting the call frames the client sends. */
function countingWebSocket() {
  const sent = { calls: 0 };
  class Counting extends WebSocket {
    send(data, ...rest) {
      if (JSON.parse(String(data)).t === "call") sent.calls += 1;
      return super.send(data, ...rest);
    }
  }
  return { Counting, sent };
}

async function rateLimitedServer(t) {
  const port = await freePort();
  const server = await startDaphne(port, {
    extraEnv: {
      DJANGO_SETTINGS_MODULE: "probes.limits_settings",
      REDIS_URL: "", // in memory: its per-IP connection limit (3) counts its own connections only
      PYTHONPATH: [`${env.root}/tests`, process.env.PYTHONPATH].filter(Boolean).join(":"),
    },
  });
  t.after(() => server.kill());
  return `ws://127.0.0.1:${port}/ws/`;
}

test("with retryThrottled, calls beyond the rate wait out the hint and all succeed", rateLimited, async (t) => {
  const url = await rateLimitedServer(t);
  const { Counting, sent } = countingWebSocket();
  const client = clientFor(t, url, { WebSocket: Counting, retryThrottled: { retries: 5, maxWait: 10 } });
  const results = [];
  for (let i = 0; i < 40; i++) results.push(await client.call("interop.empty")); // twice the burst of 20
  assert.deepEqual(results, Array(40).fill({}));
  assert.ok(sent.calls > 40, `${sent.calls} call frames for 40 calls: nothing was retried`);

  const { Counting: Once, sent: sentOnce } = countingWebSocket();
  const noRetries = clientFor(t, url, { WebSocket: Once, retryThrottled: { retries: 0 } });
  let made = 0;
  await assert.rejects(
    (async () => {
      for (; made < 60; made++) await noRetries.call("interop.empty");
    })(),
    (error) => error instanceof ResourceExhausted && error.retryAfter > 0 && error.retryAfter <= 1,
  );
  assert.equal(sentOnce.calls, made + 1, "with retries: 0 a refused call is not sent again");
});
