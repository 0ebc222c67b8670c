// Reconnection against a real daphne that this file starts, kills and
// restarts on the same port (tests/e2e/test_js_client.py passes the Python
// interpreter, the repository root and the test database in the environment).
import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamClient, Unavailable } from "../../streaming_app/static/streaming_app/client.js";
import { env, freePort, startDaphne, until } from "./helpers.mjs";

const options = {
  skip: env.python && env.root ? false : "needs STREAMING_PYTHON and STREAMING_ROOT: run through tests/e2e/test_js_client.py",
  timeout: 90000,
};

test("after the server is killed and restarted the client reconnects; the open stream failed with unavailable", options, async (t) => {
  const port = await freePort();
  let server = await startDaphne(port);
  t.after(() => server.kill());
  const states = [];
  const client = new StreamClient(`ws://127.0.0.1:${port}/ws/`, {
    reconnectInitial: 0.05,
    reconnectMax: 0.5,
    onStateChange: (state) => states.push(state),
  });
  t.after(() => client.close());

  const stream = client.stream("interop.forever", { interval_ms: 20 });
  assert.deepEqual((await stream.next()).value, { i: 0 });
  await server.kill();
  await assert.rejects(
    (async () => {
      for (let k = 0; k < 1000; k++) await stream.next();
    })(),
    (error) => error instanceof Unavailable && error.details.close_code === 1006,
  );
  assert.equal(client.state, "reconnecting");

  const waiting = client.call("interop.unary", { payload: "back" }); // made while the server is down
  server = await startDaphne(port);
  assert.deepEqual(await waiting, { payload: "back" });
  assert.equal(client.state, "open");
  await client.close();
  assert.deepEqual(states, ["connecting", "open", "reconnecting", "open", "closed"]);
});

test("a stream started after the restart runs normally on the new connection", options, async (t) => {
  const port = await freePort();
  let server = await startDaphne(port);
  t.after(() => server.kill());
  const client = new StreamClient(`ws://127.0.0.1:${port}/ws/`, { reconnectInitial: 0.05, reconnectMax: 0.5 });
  t.after(() => client.close());
  const firstConnection = (await client.ready).conn;
  await server.kill();
  await until(() => client.state === "reconnecting");
  server = await startDaphne(port);
  await until(() => client.state === "open", { timeout: 20000 });
  assert.notEqual(client.hello.conn, firstConnection);
  const stream = client.stream("interop.count", { n: 5 }, { window: 2 });
  const items = [];
  for await (const item of stream) items.push(item.i);
  assert.deepEqual(items, [0, 1, 2, 3, 4]);
  assert.deepEqual(stream.result, { total: 5 });
});
