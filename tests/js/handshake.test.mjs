// The client's error when the WebSocket handshake is refused with an HTTP status:
// a newcomer's unwired project answers 404 (a server that is not ASGI) or 500 (an
// ASGI application with no route for the path), and the error says where to look.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import WebSocket from "ws";

import { StreamClient, Unavailable } from "../../streaming_app/static/streaming_app/client.js";
import { env, needsServer } from "./helpers.mjs";

/** The error the client's first call gets, with reconnection off. */
async function firstError(url, WebSocketClass) {
  const client = new StreamClient(url, { WebSocket: WebSocketClass, reconnect: false });
  try {
    await client.call("interop.empty");
  } catch (error) {
    return error;
  } finally {
    client.close();
  }
  assert.fail("the call succeeded");
}

test("a handshake answered 404 names the routing, INSTALLED_APPS and manage.py check", async (t) => {
  // What a WSGI-only server (runserver without daphne) answers to an upgrade.
  const server = createServer((request, response) => response.writeHead(404, { "Content-Type": "text/html" }).end("<h1>Not Found</h1>"));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const error = await firstError(`ws://127.0.0.1:${server.address().port}/ws/`, WebSocket);
  assert.ok(error instanceof Unavailable, String(error));
  assert.equal(error.details.http_status, 404);
  assert.match(error.message, /HTTP 404/);
  assert.match(error.message, /StreamConsumer/);
  assert.match(error.message, /INSTALLED_APPS/);
  assert.match(error.message, /python manage\.py check/);
});

test("a handshake answered 500 on an unrouted path of a real server says where to look", { skip: needsServer }, async () => {
  const error = await firstError(env.wsUrl.replace(/\/ws\/$/, "/not-routed/"), WebSocket);
  assert.ok(error instanceof Unavailable, String(error));
  assert.equal(error.details.http_status, 500);
  assert.match(error.message, /No route found for path/);
  assert.match(error.message, /python manage\.py check/);
});

test("without the status (a browser's WebSocket) the hint still names the wiring", { skip: needsServer }, async () => {
  if (typeof globalThis.WebSocket !== "function") return;
  const error = await firstError(env.wsUrl.replace(/\/ws\/$/, "/not-routed/"), globalThis.WebSocket);
  assert.ok(error instanceof Unavailable, String(error));
  assert.equal(error.details.close_code, 1006);
  assert.equal(error.details.http_status, undefined);
  assert.match(error.message, /StreamConsumer/);
  assert.match(error.message, /python manage\.py check/);
});
