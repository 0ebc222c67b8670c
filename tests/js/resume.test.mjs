// Automatic resume against real daphne processes this file starts and kills:
// on Redis the stream goes on with exactly the missed items; on the in-memory
// broker the history dies with the process, so the stream ends with StateLost.
import assert from "node:assert/strict";
import { test } from "node:test";

import { StateLost, StreamClient } from "../../streaming_app/static/streaming_app/client.js";
import { env, freePort, sleep, startDaphne, uniqueTag, until } from "./helpers.mjs";

const needsDaphne = env.python && env.root ? false : "needs STREAMING_PYTHON and STREAMING_ROOT: run through tests/e2e/test_js_client.py";
const needsRedis = needsDaphne || (env.redisUrl || env.ci ? false : "needs Redis (STREAMING_REDIS_URL)");
const CLIENT_OPTIONS = { reconnectInitial: 0.05, reconnectMax: 0.5 };

/** Read `stream` into `received` in the background; resolves with the error that ended it, if any. */
function consume(stream, received) {
  return (async () => {
    try {
      for await (const item of stream) received.push(item.k);
      return null;
    } catch (error) {
      return error;
    }
  })();
}

test("a subscription resumes after its server is killed and restarted, with no gap and no duplicate", { skip: needsRedis, timeout: 90000 }, async (t) => {
  const redis = { REDIS_URL: env.redisUrl };
  const [port, publisherPort] = [await freePort(), await freePort()];
  let server = await startDaphne(port, { extraEnv: redis });
  const publisherServer = await startDaphne(publisherPort, { extraEnv: redis });
  t.after(() => server.kill());
  t.after(() => publisherServer.kill());
  const client = new StreamClient(`ws://127.0.0.1:${port}/ws/`, CLIENT_OPTIONS);
  const publisher = new StreamClient(`ws://127.0.0.1:${publisherPort}/ws/`);
  t.after(() => client.close());
  t.after(() => publisher.close());
  const topic = uniqueTag("resume");
  const publish = async (from, to) => {
    for (let k = from; k < to; k++) await publisher.call("interop.publish", { topic, data: { k } });
  };

  const stream = client.stream("interop.subscribe", { topic });
  const received = [];
  const ended = consume(stream, received);
  await until(() => stream.ready, { timeout: 10000, what: "the subscription's ready frame" });
  await publish(0, 100);
  await until(() => received.length === 100, { timeout: 10000, what: "the first 100 items" });
  await server.kill();
  await publish(100, 200); // while the subscriber's server is down
  server = await startDaphne(port, { extraEnv: redis });
  await publish(200, 250);
  await until(() => received.length >= 250, { timeout: 30000, what: "the missed and the new items" });
  assert.equal(await Promise.race([ended, sleep(50).then(() => "still running")]), "still running");
  assert.deepEqual(received, Array.from({ length: 250 }, (_, k) => k));
  assert.ok(stream.ready.recovered, "the last ready frame says the resume recovered");
});

test("without history that survives the server, the resumed subscription ends with StateLost", { skip: needsDaphne, timeout: 90000 }, async (t) => {
  const memory = { REDIS_URL: "" }; // the in-memory broker: its history dies with the process
  const port = await freePort();
  let server = await startDaphne(port, { extraEnv: memory });
  t.after(() => server.kill());
  const client = new StreamClient(`ws://127.0.0.1:${port}/ws/`, CLIENT_OPTIONS);
  t.after(() => client.close());
  const topic = uniqueTag("lost");
  const stream = client.stream("interop.subscribe", { topic });
  const received = [];
  const ended = consume(stream, received);
  await until(() => stream.ready, { timeout: 10000, what: "the subscription's ready frame" });
  for (let k = 0; k < 3; k++) await client.call("interop.publish", { topic, data: { k } });
  await until(() => received.length === 3, { timeout: 10000, what: "three items" });
  await server.kill();
  server = await startDaphne(port, { extraEnv: memory });
  const error = await ended;
  assert.ok(error instanceof StateLost, `expected StateLost, got ${error}`);
  assert.equal(error.code, "data_loss");
  assert.equal(error.details.resume, stream.lastEventId);
  assert.deepEqual(received, [0, 1, 2]);
});
