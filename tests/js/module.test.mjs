// The module as shipped: no dependencies, declarations that match it, a
// package.json that resolves, error classes, and URL handling in a page.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import * as client from "../../streaming_app/static/streaming_app/client.js";
import { ERROR_CLASSES, StreamClient, StreamError, Unknown } from "../../streaming_app/static/streaming_app/client.js";

const folder = new URL("../../streaming_app/static/streaming_app/", import.meta.url);
const source = readFileSync(new URL("client.js", folder), "utf8");
const declarations = readFileSync(new URL("client.d.ts", folder), "utf8");

test("client.js imports nothing: no runtime dependencies, usable with no bundler", () => {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, ""); // JSDoc may name types with import()
  assert.doesNotMatch(code, /^\s*import\s|^\s*export\s.*\sfrom\s|\brequire\(|\bimport\(/m);
  assert.match(source, /^export class StreamClient /m);
});

test("every export of client.js is declared in client.d.ts, and nothing more", () => {
  const declared = new Set([...declarations.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...Object.keys(client)].sort(), [...declared].sort());
});

test("client.d.ts type-checks against a typed usage file (tsc --strict)", (t) => {
  const tsc = fileURLToPath(new URL("node_modules/typescript/bin/tsc", import.meta.url));
  if (!existsSync(tsc)) return t.skip("typescript is not installed in tests/js (npm ci)");
  const run = spawnSync(process.execPath, [tsc, "-p", fileURLToPath(new URL("tsconfig.json", import.meta.url))], { encoding: "utf8", timeout: 120000 });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});

test("package.json makes the folder an npm package whose entry points exist", () => {
  const pkg = JSON.parse(readFileSync(new URL("package.json", folder), "utf8"));
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].default, "./client.js");
  assert.equal(pkg.exports["."].types, "./client.d.ts");
  assert.equal(pkg.types, "./client.d.ts");
  for (const file of pkg.files) assert.ok(existsSync(new URL(file, folder)), `${file} is listed but missing`);
  const pyproject = readFileSync(new URL("../../pyproject.toml", import.meta.url), "utf8");
  assert.equal(pkg.version, pyproject.match(/^version = "(.+)"/m)[1], "the same version as the Python package");
  const resolved = createRequire(new URL("package.json", folder)).resolve("streaming-app-client/package.json", { paths: [fileURLToPath(new URL("..", folder))] });
  assert.ok(resolved.endsWith("package.json"));
});

test("there is an error class for each of the 16 codes, named after it", () => {
  assert.equal(Object.keys(ERROR_CLASSES).length, 16);
  for (const [code, cls] of Object.entries(ERROR_CLASSES)) {
    const error = new cls();
    assert.equal(error.code, code);
    assert.equal(error.name, cls.name);
    assert.ok(error instanceof StreamError && error instanceof Error);
    assert.ok(error.message.length > 0, "a default message");
    assert.deepEqual(error.details, {});
  }
});

test("StreamError.forCode keeps an unknown code in the details of an Unknown", () => {
  const error = StreamError.forCode("brand_new", "m", { a: 1 });
  assert.ok(error instanceof Unknown);
  assert.deepEqual(error.details, { a: 1, code: "brand_new" });
  assert.equal(StreamError.forCode("not_found", "").message, "", "an empty message stays empty");
});

/** A WebSocket class that records what it was given and never connects. */
class RecordingSocket {
  static made = [];
  constructor(url, protocols, options) {
    RecordingSocket.made.push({ url, protocols, options });
    this.readyState = 0;
  }
  send() {}
  close() {}
}

test("in a page, a path or an http(s) URL becomes the ws(s) URL of the page's origin", async (t) => {
  t.after(() => delete globalThis.location);
  const cases = [
    ["http://example.test:8000/chat/", "/ws/", "ws://example.test:8000/ws/"],
    ["https://example.test/chat/", "/ws/?x=1", "wss://example.test/ws/?x=1"],
    ["https://example.test/chat/", "ws://other.test/ws/", "ws://other.test/ws/"],
    ["https://example.test/chat/", "https://api.test/ws/", "wss://api.test/ws/"],
  ];
  for (const [page, given, expected] of cases) {
    globalThis.location = new URL(page);
    const streams = new StreamClient(given, { WebSocket: RecordingSocket });
    assert.equal(streams.url, expected);
    await streams.close();
  }
});

test("the socket is opened with the streaming.v1.json subprotocol", async () => {
  RecordingSocket.made.length = 0;
  const streams = new StreamClient("ws://127.0.0.1:1/ws/", { WebSocket: RecordingSocket });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(RecordingSocket.made[0].protocols, ["streaming.v1.json"]);
  assert.equal(RecordingSocket.made[0].options, undefined, "no third argument when there are no headers");
  await streams.close();
});

test("with no WebSocket anywhere the constructor says what to do", (t) => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
  t.after(() => saved && Object.defineProperty(globalThis, "WebSocket", saved));
  delete globalThis.WebSocket;
  assert.throws(() => new StreamClient("ws://127.0.0.1:1/ws/"), /--experimental-websocket/);
});
