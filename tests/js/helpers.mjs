// Shared by the Node tests of client.js. Not a test file: tests/e2e/test_js_client.py
// passes the *.test.mjs files to `node --test` by name.
import { once } from "node:events";
import { spawn } from "node:child_process";
import net from "node:net";
import { WebSocketServer } from "ws";

export const CLIENT = new URL("../../streaming_app/static/streaming_app/client.js", import.meta.url).href;

/** What tests/e2e/test_js_client.py passes in: the real server and credentials. */
export const env = {
  wsUrl: process.env.STREAMING_WS_URL,
  httpUrl: process.env.STREAMING_HTTP_URL,
  token: process.env.STREAMING_TOKEN,
  staffToken: process.env.STREAMING_STAFF_TOKEN,
  session: process.env.STREAMING_SESSION,
  python: process.env.STREAMING_PYTHON,
  root: process.env.STREAMING_ROOT,
  redisUrl: process.env.STREAMING_REDIS_URL,
  ci: process.env.CI === "true",
};

/** `skip` option of tests that need the real server. */
export const needsServer = env.wsUrl ? false : "needs STREAMING_WS_URL: run through tests/e2e/test_js_client.py";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `probe` until it returns something truthy (bounded), and return that. */
export async function until(probe, { timeout = 5000, every = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** `interop.cleanups` for `tag`, once it is non-zero (or 0 after ~2.5 s). */
export async function cleanups(client, tag) {
  for (let i = 0; i < 50; i++) {
    const { count } = await client.call("interop.cleanups", { tag });
    if (count) return count;
    await sleep(50);
  }
  return 0;
}

export const uniqueTag = (name) => `${name}-${process.pid}-${Math.random().toString(16).slice(2)}`;

export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

// -- a scripted protocol server on the ws package --------------------------------------------

export const HELLO = {
  t: "hello",
  v: 1,
  conn: "fake",
  heartbeat: 25,
  limits: { max_frame: 1000000, max_calls: 100, client_window: 64 },
};

/** One connection to the fake server: the frames it received, and ways to answer. */
export class FakeConnection {
  constructor(ws, request) {
    this.ws = ws;
    this.request = request;
    this.frames = [];
    this.closed = false;
    this._waiters = [];
    ws.on("message", (data, isBinary) => {
      const frame = isBinary ? { binary: true } : JSON.parse(data.toString());
      frame.at = Date.now();
      this.frames.push(frame);
      this._check();
    });
    ws.on("close", () => {
      this.closed = true;
      this._check();
    });
  }

  /** Send `hello` (with `limits`/`heartbeat` overrides). */
  hello(overrides = {}) {
    this.send({ ...HELLO, ...overrides, limits: { ...HELLO.limits, ...overrides.limits } });
  }

  send(frame) {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  close(code) {
    this.ws.close(code);
  }

  /** Drop the TCP connection with no close frame: the client sees 1006. */
  kill() {
    this.ws.terminate();
  }

  /** The next received frame matching `match` (an object of fields, or a predicate) that was not taken before. */
  frame(match, { timeout = 5000 } = {}) {
    const test = typeof match === "function" ? match : (f) => Object.entries(match).every(([k, v]) => f[k] === v);
    return new Promise((resolve, reject) => {
      const waiter = { test, resolve, reject };
      waiter.timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        reject(new Error(`no frame matching ${typeof match === "function" ? match : JSON.stringify(match)} within ${timeout} ms; got ${JSON.stringify(this.frames)}`));
      }, timeout);
      this._waiters.push(waiter);
      this._check();
    });
  }

  _check() {
    for (const waiter of [...this._waiters]) {
      const index = this.frames.findIndex((f) => !f.taken && waiter.test(f));
      if (index !== -1) {
        this.frames[index].taken = true;
        clearTimeout(waiter.timer);
        this._waiters = this._waiters.filter((w) => w !== waiter);
        waiter.resolve(this.frames[index]);
      }
    }
  }
}

/**
 * A WebSocket server speaking as much of the protocol as a test scripts:
 * `onConnection(conn)` runs for every connection (default: send hello).
 */
export async function fakeServer(onConnection = (conn) => conn.hello()) {
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (protocols) => (protocols.has("streaming.v1.json") ? "streaming.v1.json" : false),
  });
  await once(wss, "listening");
  const connections = [];
  const arrivals = [];
  wss.on("connection", (ws, request) => {
    const conn = new FakeConnection(ws, request);
    conn.openedAt = Date.now();
    connections.push(conn);
    for (const resolve of arrivals.splice(0)) resolve(conn);
    onConnection(conn);
  });
  return {
    url: `ws://127.0.0.1:${wss.address().port}/ws/`,
    connections,
    /** The connection number `n` (0-based), once it arrives. */
    async connection(n, { timeout = 5000 } = {}) {
      await until(() => connections.length > n, { timeout, what: `connection #${n}` });
      return connections[n];
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

// -- a daphne process of our own (reconnection tests) ----------------------------------------

/** Start `daphne project.asgi:application` on `port`; resolves once it listens. */
export async function startDaphne(port, { timeout = 30000, extraEnv = {} } = {}) {
  const child = spawn(env.python, ["-m", "daphne", "-b", "127.0.0.1", "-p", String(port), "project.asgi:application"], {
    cwd: env.root,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const reap = () => child.kill("SIGKILL"); // never leave a server behind, whatever ends this process
  process.on("exit", reap);
  child.once("exit", () => process.off("exit", reap));
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`daphne exited with ${child.exitCode}:\n${output}`);
        return await new Promise((resolve) => {
          const socket = net.connect(port, "127.0.0.1");
          socket.once("connect", () => (socket.destroy(), resolve(true)));
          socket.once("error", () => resolve(false));
        });
      },
      { timeout, every: 50, what: `daphne on port ${port}` },
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    child,
    output: () => output,
    async kill(signal = "SIGKILL") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    },
  };
}
