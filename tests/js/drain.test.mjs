// A server that drains on SIGTERM (docs/operations.md): the client sees 4503,
// reconnects once a new process listens on the port (a rolling restart), and
// its subscription resumes with no gap and no duplicate.
import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamClient } from "../../streaming_app/static/streaming_app/client.js";
import { env, freePort, sleep, startDaphne, uniqueTag, until } from "./helpers.mjs";

const needsDaphne = env.python && env.root ? false : "needs STREAMING_PYTHON and STREAMING_ROOT: run through tests/e2e/test_js_client.py";
const needsRedis = needsDaphne || (env.redisUrl || env.ci ? false : "needs Redis (STREAMING_REDIS_URL)");

test("a subscription resumes after its server drains on SIGTERM and a new one takes the port", { skip: needsRedis, timeout: 90000 }, async (t) => {
  const redis = { REDIS_URL: env.redisUrl };
  const [port, publisherPort] = [await freePort(), await freePort()];
  let server = await startDaphne(port, { extraEnv: redis });
  const publisherServer = await startDaphne(publisherPort, { extraEnv: redis });
  t.after(() => server.kill());
  t.after(() => publisherServer.kill());
  const states = [];
  const client = new StreamClient(`ws://127.0.0.1:${port}/ws/`, {
    reconnectInitial: 0.05,
    reconnectMax: 0.5,
    onStateChange: (state) => states.push(state),
  });
  const publisher = new StreamClient(`ws://127.0.0.1:${publisherPort}/ws/`);
  t.after(() => client.close());
  t.after(() => publisher.close());
  const topic = uniqueTag("drain");
  const publish = async (from, to) => {
    for (let k = from; k < to; k++) await publisher.call("interop.publish", { topic, data: { k } });
  };

  const stream = client.stream("interop.subscribe", { topic });
  const received = [];
  const ended = (async () => {
    try {
      for await (const item of stream) received.push(item.k);
      return null;
    } catch (error) {
      return error;
    }
  })();
  await until(() => stream.ready, { timeout: 10000, what: "the subscription's ready frame" });
  await publish(0, 100);
  await until(() => received.length === 100, { timeout: 10000, what: "the first 100 items" });

  await server.kill("SIGTERM"); // resolves once the process has drained and exited
  assert.equal(server.child.exitCode, 0, "the drained server exits by itself, with status 0");
  assert.ok(states.includes("reconnecting"), "4503 makes the client reconnect");
  await publish(100, 200); // while no server listens on the port
  server = await startDaphne(port, { extraEnv: redis });
  await publish(200, 250);
  await until(() => received.length >= 250, { timeout: 30000, what: "the missed and the new items" });
  assert.equal(await Promise.race([ended, sleep(50).then(() => "still running")]), "still running");
  assert.deepEqual(received, Array.from({ length: 250 }, (_, k) => k));
  assert.ok(stream.ready.recovered, "the last ready frame says the resume recovered");
});
