// The module as shipped: no dependencies, declarations that match it, a
// package.json that resolves, error classes, and URL handling in a page.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import * as client from "../../streaming_app/static/streaming_app/client.js";
import { ERROR_CLASSES, StreamClient, StreamError, Unknown } from "../../streaming_app/static/streaming_app/client.js";

const folder = new URL("../../streaming_app/static/streaming_app/", import.meta.url);
const modules = readdirSync(folder).filter((name) => name.endsWith(".js")).sort();
const declarations = readFileSync(new URL("client.d.ts", folder), "utf8");

test("the client imports only its own modules beside it: no runtime dependencies, usable with no bundler", () => {
  for (const name of modules) {
    const source = readFileSync(new URL(name, folder), "utf8");
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, ""); // JSDoc may name types with import()
    assert.doesNotMatch(code, /\brequire\(|\bimport\(/, `${name} loads modules dynamically`);
    for (const [, specifier] of code.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gm)) {
      assert.match(specifier, /^\.\/[a-z]+\.js$/, `${name} imports ${specifier}: only ./<module>.js of the same folder`);
      assert.ok(modules.includes(specifier.slice(2)), `${name} imports ${specifier}, which does not exist`);
    }
    assert.doesNotMatch(code, /^\s*import\s+["']/m, `${name} has a bare import`);
  }
  assert.equal(typeof client.StreamClient, "function", "client.js, the entry module, exports StreamClient");
});

test("every export of client.js is declared in client.d.ts, and nothing more", () => {
  const declared = new Set([...declarations.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual([...Object.keys(client)].sort(), [...declared].sort());
});

test("client.d.ts type-checks against a typed usage file (tsc --strict)", (t) => {
  const tsc = fileURLToPath(new URL("../../node_modules/typescript/bin/tsc", import.meta.url));
  if (!existsSync(tsc)) return t.skip("typescript is not installed (npm ci at the repository's root)");
  const run = spawnSync(process.execPath, [tsc, "-p", fileURLToPath(new URL("../../tsconfig.json", import.meta.url))], { encoding: "utf8", timeout: 120000 });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});

test("package.json makes the folder an npm package whose entry points exist", () => {
  const pkg = JSON.parse(readFileSync(new URL("package.json", folder), "utf8"));
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].default, "./client.js");
  assert.equal(pkg.exports["."].types, "./client.d.ts");
  assert.equal(pkg.types, "./client.d.ts");
  for (const file of pkg.files) assert.ok(existsSync(new URL(file, folder)), `${file} is listed but missing`);
  for (const name of modules) assert.ok(pkg.files.includes(name), `${name} is a module of the client but not in package.json's files`);
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
