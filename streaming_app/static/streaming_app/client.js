/**
 * The JavaScript client of streaming_app: protocol v1 over one WebSocket, for
 * browsers and Node, with no dependencies.
 *
 *     import { StreamClient } from "./client.js";
 *     const client = new StreamClient("/ws/");
 *     await client.call("interop.unary", { payload: "hi" });
 *     for await (const item of client.stream("interop.count", { n: 3 })) console.log(item);
 *
 * It mirrors the Python client (streaming_app.client): unary calls, server
 * streams, client-stream and bidirectional calls, per-call timeouts, credit
 * given back as the caller consumes, typed errors, reconnection with
 * exponential backoff and full jitter, heartbeats, and the client side of
 * resumable streams. `sseStream()` reads a server stream over HTTP
 * (Server-Sent Events through `fetch`) with the same iteration surface.
 *
 * The wire protocol is docs/protocol.md of the repository.
 * @module
 */

/** The WebSocket subprotocol of protocol v1. */
export const SUBPROTOCOL = "streaming.v1.json";

/** Close codes after which the client reconnects; after any other it stays closed. */
export const RECONNECT_CLOSE_CODES = Object.freeze([1006, 1011, 4408, 4429, 4500, 4503]);

const INVALID_CREDENTIALS = 4401;
const HEARTBEAT_TIMEOUT = 4408;
const DONE = Object.freeze({ value: undefined, done: true });

// -- errors ---------------------------------------------------------------------------------

/**
 * Base class of every error a call can end with. `code` is the protocol's
 * error code, `details` its machine-readable details (`{}` when none).
 */
export class StreamError extends Error {
  static code = "unknown";
  static defaultMessage = "Unknown error.";

  /**
   * @param {string} [message]
   * @param {Record<string, any>} [details]
   */
  constructor(message, details) {
    super(message ?? new.target.defaultMessage);
    this.name = new.target.name;
    /** @type {string} */
    this.code = new.target.code;
    /** @type {Record<string, any>} */
    this.details = details ?? {};
  }

  /**
   * The error of a wire code; an unknown code gives `Unknown` keeping the code in `details.code`.
   * @param {string} code
   * @param {string} [message]
   * @param {Record<string, any>} [details]
   * @returns {StreamError}
   */
  static forCode(code, message, details) {
    const cls = ERROR_CLASSES[code];
    if (cls === undefined) return new Unknown(message, { ...details, code });
    return new cls(message, details);
  }
}

export class Cancelled extends StreamError {
  static code = "cancelled";
  static defaultMessage = "The call was cancelled.";
}
export class Unknown extends StreamError {
  static code = "unknown";
  static defaultMessage = "Unknown error.";
}
export class InvalidArgument extends StreamError {
  static code = "invalid_argument";
  static defaultMessage = "Invalid argument.";
}
export class DeadlineExceeded extends StreamError {
  static code = "deadline_exceeded";
  static defaultMessage = "The deadline was exceeded.";
}
export class NotFound extends StreamError {
  static code = "not_found";
  static defaultMessage = "Not found.";
}
export class AlreadyExists extends StreamError {
  static code = "already_exists";
  static defaultMessage = "Already exists.";
}
export class PermissionDenied extends StreamError {
  static code = "permission_denied";
  static defaultMessage = "You do not have permission to perform this action.";
}
export class ResourceExhausted extends StreamError {
  static code = "resource_exhausted";
  static defaultMessage = "A resource limit was reached.";
}
export class FailedPrecondition extends StreamError {
  static code = "failed_precondition";
  static defaultMessage = "A precondition failed.";
}
export class Aborted extends StreamError {
  static code = "aborted";
  static defaultMessage = "The operation was aborted.";
}
export class OutOfRange extends StreamError {
  static code = "out_of_range";
  static defaultMessage = "Out of range.";
}
export class Unimplemented extends StreamError {
  static code = "unimplemented";
  static defaultMessage = "Not implemented.";
}
export class Internal extends StreamError {
  static code = "internal";
  static defaultMessage = "Internal error.";
}
export class Unavailable extends StreamError {
  static code = "unavailable";
  static defaultMessage = "The service is unavailable.";
}
export class DataLoss extends StreamError {
  static code = "data_loss";
  static defaultMessage = "Unrecoverable data loss.";
}
export class Unauthenticated extends StreamError {
  static code = "unauthenticated";
  static defaultMessage = "Authentication credentials were not provided.";
}

/**
 * A resumable stream could not be resumed: the server's history no longer
 * reaches back to the last event the caller saw (`ready` with
 * `recovered: false`). Nothing was replayed; reload your state, then open the
 * stream again. `details.resume` is the event id that was asked for,
 * `details.eid` the server's current position.
 */
export class StateLost extends DataLoss {
  static defaultMessage = "The stream's history no longer reaches the resume point; reload the state.";
}

/** The error class of each of the 16 protocol codes. */
export const ERROR_CLASSES = Object.freeze(
  Object.fromEntries(
    [
      Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
      PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
      Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated,
    ].map((cls) => [cls.code, cls]),
  ),
);

/** @param {any} body `{code, message, details}` as in `error` frames and HTTP error bodies */
function errorFromBody(body) {
  const code = typeof body?.code === "string" ? body.code : "unknown";
  const details = body?.details && typeof body.details === "object" ? body.details : {};
  return StreamError.forCode(code, typeof body?.message === "string" ? body.message : undefined, details);
}

// -- small plumbing --------------------------------------------------------------------------

const clock = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/** A promise with its resolve and reject; its rejection is never reported as unhandled. */
function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

function unref(timer) {
  if (timer && typeof timer.unref === "function") timer.unref();
  return timer;
}

/** `/ws/` or `http://host/ws/` in a page becomes the `ws:`/`wss:` URL of that page's origin. */
function resolveWebSocketUrl(url) {
  const text = String(url);
  if (/^wss?:/i.test(text) || typeof location === "undefined") return text;
  const resolved = new URL(text, location.href);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  else if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}

/**
 * The page's CSRF token (the `csrftoken` cookie) for a request to `url`, only
 * if that URL is of the page's own origin; undefined otherwise or outside a page.
 */
function pageCsrfToken(url) {
  if (typeof location === "undefined") return undefined;
  if (new URL(String(url), location.href).origin !== location.origin) return undefined;
  return readCookie("csrftoken");
}

/** The value of a cookie of the page (`document.cookie`), or undefined. */
function readCookie(name) {
  if (typeof document === "undefined" || !document.cookie) return undefined;
  for (const part of document.cookie.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return undefined;
}

let encoder;
function utf8Length(text) {
  encoder ??= new TextEncoder();
  return encoder.encode(text).length;
}

// -- calls -----------------------------------------------------------------------------------

/**
 * One call in flight. `client.call()` uses it internally; `client.stream()`
 * returns its subclass `Stream`, `client.open()` a `Call` for client streams
 * and bidirectional calls: `send()`, `end()`, `for await` over the server's
 * items, `result()`.
 */
export class Call {
  /** @internal */
  constructor(client, kind, method, args, options = {}) {
    /** @type {StreamClient} */
    this.client = client;
    /** @type {string} */
    this.method = method;
    /** @type {Record<string, any>} */
    this.args = args ?? {};
    /** @type {"unary" | "stream" | "open"} @internal */
    this.kind = kind;
    /** The call id on the current connection (`null` until the call frame is sent). @type {number | null} */
    this.id = null;
    /** Credit window: most server items in flight (`null`: unbounded). @type {number | null} */
    this.window = kind === "unary" ? null : options.window === undefined ? client.window : options.window;
    /** Event id of the last item handed to the caller (resumable streams), or the `ready` position. @type {string | null} */
    this.lastEventId = options.resume ?? null;
    /** The last `ready` frame of a resumable stream. @type {{eid: string, recovered?: boolean} | null} */
    this.ready = null;
    this._deadline = options.timeout != null ? clock() + options.timeout * 1000 : null;
    this._signal = options.signal ?? null;
    this._frames = [];
    this._wakers = [];
    this._sendWaiters = [];
    this._outbound = 0;
    this._consumed = 0;
    this._onWire = false; // the call frame is on the current connection and the server has not ended it
    this._serverDone = false; // a terminal frame arrived, or the call was stopped: the server sends no more
    this._terminal = null; // the error a terminal frame carried (for send() after it)
    this._finished = false; // the caller has seen the end
    this._result = undefined;
    this._error = null;
    this._halfClosed = false;
    this._awaitingReady = false; // sent with `resume`: the server must confirm it with `ready` first
    this._issued = deferred();
    this._started = false;
    this._timer = null;
    this._onAbort = null;
  }

  /** Queue the call on the client: sent at once when connected, else when the connection opens. @internal */
  _start() {
    if (this._started) return this._issued.promise;
    this._started = true;
    if (this._finished) return this._issued.promise; // cancelled before it started
    const signal = this._signal;
    if (signal) {
      if (signal.aborted) {
        this._stop(signal.reason);
        return this._issued.promise;
      }
      this._onAbort = () => this._stop(signal.reason);
      signal.addEventListener("abort", this._onAbort, { once: true });
    }
    this._armDeadline();
    this.client._enqueue(this);
    return this._issued.promise;
  }

  /**
   * The server enforces the deadline of a call it runs; this timer ends a call
   * waiting for a connection (a new one, or a stream to resume) when it passes.
   */
  _armDeadline() {
    if (this._deadline === null) return;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      if (!this._onWire) this._stop(new DeadlineExceeded("The deadline passed while the call waited for a connection."));
    }, Math.max(0, this._deadline - clock()));
  }

  /** Seconds left before the deadline (`null`: none). @internal */
  _remaining() {
    return this._deadline === null ? null : (this._deadline - clock()) / 1000;
  }

  // -- fed by the client -----------------------------------------------------------------

  /** @internal */
  _deliver(frame) {
    switch (frame.t) {
      case "next":
        if (this._awaitingReady) {
          // A server that resumes a stream says so with `ready` first; without
          // it, events after the resume point may be missing.
          return this._stateLost(frame.eid, "The server did not confirm the resume (no ready frame); events may be missing.");
        }
        this._frames.push(frame);
        break;
      case "ready":
        this.ready = frame;
        this._awaitingReady = false;
        if (frame.recovered === false) return this._stateLost(frame.eid);
        if (typeof frame.eid === "string") this.lastEventId = frame.eid;
        return;
      case "end":
        this._serverEnded();
        this._frames.push(frame);
        break;
      case "error":
        this._serverEnded(errorFromBody(frame));
        this._frames.push({ t: "error", error: this._terminal });
        break;
      default:
        return;
    }
    this._wake();
  }

  _stateLost(eid, message) {
    const details = { resume: this.lastEventId, eid: eid ?? null };
    this.client._cancelOnWire(this);
    this._terminate(new StateLost(message, details));
  }

  /** @internal */
  _grantOutbound(n) {
    if (Number.isInteger(n) && n > 0) {
      this._outbound += n;
      this._wakeSenders();
    }
  }

  /** The server ended the call (or it can no longer): no frame follows for it. */
  _serverEnded(error = null) {
    this._serverDone = true;
    this._onWire = false;
    this._terminal = error ?? new Error(`call ${this.id} (${this.method}) has ended`);
    this.client._forget(this);
    this._wakeSenders();
    this._release();
  }

  /** End the call with `error` after the items already received (e.g. the connection was lost). @internal */
  _terminate(error) {
    if (this._serverDone) return;
    this._serverEnded(error);
    this._frames.push({ t: "error", error });
    this._wake();
    this._issued.reject(error);
  }

  /**
   * End the call now: `error` (or a plain end when null) is what the caller
   * sees next; items not yet read are dropped. A call the server still runs
   * is cancelled there.
   */
  _stop(error) {
    if (this._finished) return;
    if (this._onWire) this.client._cancelOnWire(this);
    if (!this._serverDone) this._serverEnded(error);
    this._finished = true;
    this._error = error;
    this._frames.length = 0;
    this._wake();
    this._issued.reject(error ?? new Cancelled());
  }

  /** The connection was lost while the server ran this call. @internal */
  _connectionLost(error, willReconnect) {
    this._onWire = false;
    if (willReconnect && this.kind === "stream" && this.ready !== null && this.lastEventId !== null) {
      // Resumable (the server sent `ready`): re-issued with `resume` on the
      // next connection. Items not yet handed to the caller come again after
      // the resume point.
      this._frames = this._frames.filter((frame) => frame.t !== "next");
      this._armDeadline();
      return true;
    }
    this._terminate(error);
    return false;
  }

  _release() {
    clearTimeout(this._timer);
    if (this._onAbort) this._signal.removeEventListener("abort", this._onAbort);
    this._onAbort = null;
  }

  _wake() {
    const wakers = this._wakers;
    this._wakers = [];
    for (const wake of wakers) wake();
  }

  _wakeSenders() {
    const waiters = this._sendWaiters;
    this._sendWaiters = [];
    for (const wake of waiters) wake();
  }

  // -- items -----------------------------------------------------------------------------

  /** The next item, or done; throws the error the call failed with. @internal */
  async _next() {
    this._start();
    for (;;) {
      if (this._finished) {
        if (this._error) throw this._error;
        return DONE;
      }
      if (this._frames.length === 0) {
        await new Promise((resolve) => this._wakers.push(resolve));
        continue;
      }
      const frame = this._frames.shift();
      if (frame.t === "next") {
        if (typeof frame.eid === "string") this.lastEventId = frame.eid;
        this._consumedOne();
        return { value: frame.d, done: false };
      }
      this._finished = true;
      if (frame.t === "end") this._result = frame.d ?? null;
      else this._error = frame.error;
      this._release();
    }
  }

  /** Credit back to the server, half a window at a time, as the caller consumes. */
  _consumedOne() {
    if (this.window === null || !this._onWire) return;
    this._consumed += 1;
    if (this._consumed * 2 >= this.window) {
      this.client._sendFrame({ t: "credit", id: this.id, n: this._consumed });
      this._consumed = 0;
    }
  }

  /**
   * Iterate the server's items; leaving the loop early (`break`, `return()`,
   * an exception) cancels the call on the server.
   * @returns {AsyncIterator<any>}
   */
  [Symbol.asyncIterator]() {
    return {
      next: () => this._nextOrCancel(),
      return: async (value) => {
        this.cancel();
        return { value, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  async _nextOrCancel() {
    try {
      return await this._next();
    } catch (error) {
      this.cancel();
      throw error;
    }
  }

  /**
   * Wait for the end of the call and return its result (the `end` frame's
   * value, `null` if none); items not yet read are discarded.
   * @returns {Promise<any>}
   */
  async result() {
    for (;;) {
      const { done } = await this._next();
      if (done) return this._result;
    }
  }

  // -- client half -------------------------------------------------------------------------

  /**
   * Send one item (client-stream and bidirectional calls), waiting while the
   * server has granted no credit. Rejects with the call's error once it has
   * failed.
   * @param {any} item
   * @returns {Promise<void>}
   */
  async send(item) {
    this._clientHalf("send");
    await this._start();
    for (;;) {
      if (this._halfClosed) throw new Error(`call ${this.id} (${this.method}): end() was called; no more items can be sent`);
      if (this._finished && this._error) throw this._error;
      if (this._serverDone) throw this._terminal;
      if (this._outbound > 0) break;
      await new Promise((resolve) => this._sendWaiters.push(resolve));
    }
    this._outbound -= 1;
    try {
      this.client._sendFrame({ t: "next", id: this.id, d: item }, true);
    } catch (error) {
      this._outbound += 1;
      throw error;
    }
  }

  /**
   * Half-close: no more items from this side.
   * @returns {Promise<void>}
   */
  async end() {
    this._clientHalf("end");
    await this._start();
    if (!this._halfClosed && !this._serverDone) {
      this._halfClosed = true;
      this.client._sendFrame({ t: "end", id: this.id });
    }
  }

  _clientHalf(what) {
    if (this.kind !== "open") throw new TypeError(`${what}(): ${this.method} is a ${this.kind} call, with no items from the client; use client.open()`);
  }

  /** Stop the call on the server (its handler's `finally` runs); nothing more is received. */
  cancel() {
    this._stop(null);
  }
}

/**
 * A server stream: `for await (const item of stream)`, then `stream.result`.
 * The call starts on the first `next()`; `break`, `return()` or the
 * `AbortSignal` of the options cancel it on the server.
 */
export class Stream extends Call {
  /** @internal */
  constructor(client, method, args, options) {
    super(client, "stream", method, args, options);
  }

  /** @returns {this} */
  [Symbol.asyncIterator]() {
    return this;
  }

  /** @returns {Promise<IteratorResult<any>>} */
  next() {
    return this._nextOrCancel();
  }

  /** Stop iterating: cancels the call on the server if it is still running. */
  async return(value) {
    this.cancel();
    return { value, done: true };
  }

  async throw(error) {
    this.cancel();
    throw error;
  }

  /** The stream's return value, once iteration has finished (`undefined` if it was cancelled). */
  get result() {
    if (!this._finished) throw new Error("the stream's result is known once iteration has finished");
    return this._result;
  }
}

// -- the client ------------------------------------------------------------------------------

/**
 * One multiplexed connection to a streaming_app server.
 *
 * Connects at once. After a close the protocol marks as reconnectable (1006,
 * 1011, 4408, 4429, 4500, 4503) it reconnects with exponential backoff and
 * full jitter: open calls fail with `Unavailable` (resumable streams resume
 * instead) and new calls wait for the new connection. If the first
 * connection fails, or a close is not reconnectable, the client is closed and
 * calls fail with `Unavailable` (`Unauthenticated` for refused credentials).
 *
 * Events: `statechange` (a `CustomEvent` whose `detail` is
 * `{state, previous, closeCode}`), `error` (a `CustomEvent` whose `detail` is
 * a `StreamError` the server sent for no call).
 */
export class StreamClient extends EventTarget {
  /**
   * @param {string | URL} url e.g. `"ws://127.0.0.1:8000/ws/"`; in a page `"/ws/"` is enough
   * @param {import("./client.d.ts").StreamClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    this.url = resolveWebSocketUrl(url);
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TypeError("No WebSocket class: pass one as options.WebSocket (e.g. the ws package), or run Node 22+ / Node 20 with --experimental-websocket.");
    }
    const headers = { ...options.headers };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    if (Object.keys(headers).length && !options.WebSocket) {
      throw new TypeError("Headers (and token) need a WebSocket class that accepts them, passed as options.WebSocket (e.g. the ws package); in a browser use the session cookie or a ticket.");
    }
    this._headers = Object.keys(headers).length ? headers : null;
    this.ticket = options.ticket ?? null;
    /** Default credit window of streams (`null`: unbounded). */
    this.window = options.window === undefined ? 64 : options.window;
    this.reconnect = options.reconnect ?? true;
    this.reconnectInitial = options.reconnectInitial ?? 0.1;
    this.reconnectMax = options.reconnectMax ?? 10;
    this.openTimeout = options.openTimeout ?? 10;
    this.heartbeat = options.heartbeat;
    /** @type {"connecting" | "open" | "reconnecting" | "closed"} */
    this.state = "connecting";
    /** The server's `hello` frame of the current connection. */
    this.hello = null;
    /** Items a call may send before the server grants credit (`hello.limits.client_window`). */
    this.clientWindow = 0;
    /** The close code of the last connection. */
    this.closeCode = null;
    this._ws = null;
    this._everOpen = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._noHello = null;
    this._beat = null;
    this._closing = false;
    this._lastId = 0;
    this._lastSeen = 0;
    this._lastPing = 0;
    this._calls = new Map(); // id -> call the server runs on this connection
    this._pending = new Set(); // calls waiting for a connection (new, or resumable streams to re-issue)
    this._opened = deferred();
    /** Resolves with `hello` once connected; rejects if the client closes first. */
    this.ready = this._opened.promise;
    if (options.onStateChange) this.onStateChange(options.onStateChange);
    queueMicrotask(() => {
      if (this._closing) return;
      this._emitState("connecting", "closed");
      this._connect();
    });
  }

  // -- state -------------------------------------------------------------------------------

  /**
   * Call `callback(state)` on every change of `state`; returns a function that unsubscribes.
   * @param {(state: string, client: StreamClient) => void} callback
   */
  onStateChange(callback) {
    const listener = (event) => callback(event.detail.state, this);
    this.addEventListener("statechange", listener);
    return () => this.removeEventListener("statechange", listener);
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._emitState(state, previous);
  }

  _emitState(state, previous) {
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, previous, closeCode: this.closeCode } }));
  }

  // -- connecting --------------------------------------------------------------------------

  async _connectUrl() {
    let ticket = this.ticket;
    if (typeof ticket === "function") ticket = await ticket();
    if (!ticket) return this.url;
    return `${this.url}${this.url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket)}`;
  }

  async _connect() {
    let ws;
    try {
      const url = await this._connectUrl();
      if (this._closing) return;
      ws = this._headers
        ? new this._WebSocket(url, [SUBPROTOCOL], { headers: this._headers })
        : new this._WebSocket(url, [SUBPROTOCOL]);
    } catch (error) {
      if (this._closing) return;
      const fatal = !this._everOpen || error instanceof Unauthenticated || error instanceof TypeError || error?.name === "SyntaxError";
      if (fatal) return this._giveUp(error instanceof StreamError ? error : new Unavailable(`Cannot connect to ${this.url}: ${error?.message ?? error}`));
      return this._retry();
    }
    this._ws = ws;
    let greeted = false;
    this._noHello = setTimeout(() => this._drop(ws, 1006, false), this.openTimeout * 1000);
    // A close event follows an error, except in Node 20's built-in WebSocket
    // when the connection is refused: then the socket is given up here.
    ws.onerror = () => setTimeout(() => this._drop(ws, 1006, greeted), 50);
    ws.onclose = (event) => {
      if (this._ws === ws) this._lost(event.code, greeted);
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._lastSeen = clock();
      if (greeted) return this._receive(event.data);
      let hello;
      try {
        hello = JSON.parse(event.data);
      } catch {}
      if (hello?.t !== "hello") return this._drop(ws, 1006, false);
      greeted = true;
      clearTimeout(this._noHello);
      this._greeted(ws, hello);
    };
  }

  _greeted(ws, hello) {
    this.hello = hello;
    this.clientWindow = Number(hello.limits?.client_window) || 0;
    this._attempt = 0;
    this._everOpen = true;
    this._startHeartbeat(ws, hello);
    this._setState("open");
    this._opened.resolve(hello);
    const pending = [...this._pending];
    this._pending.clear();
    for (const call of pending) this._issue(call);
  }

  /** Forget a connection now (a dead one need not close politely) and handle it as closed with `code`. */
  _drop(ws, code, greeted) {
    if (this._ws !== ws) return;
    this._ws = null;
    try {
      if (typeof ws.terminate === "function") ws.terminate();
      else ws.close(code >= 4000 ? code : 1000);
    } catch {}
    this._lost(code, greeted);
  }

  _lost(code, greeted) {
    this._ws = null;
    clearTimeout(this._noHello);
    this._stopHeartbeat();
    this.closeCode = code;
    if (this._closing) return;
    if (!greeted && code === INVALID_CREDENTIALS) {
      return this._giveUp(new Unauthenticated("The server refused the credentials (close code 4401).", { close_code: code }));
    }
    const error = new Unavailable(`The connection was closed (code ${code}).`, { close_code: code });
    const willReconnect = this.reconnect && this._everOpen && RECONNECT_CLOSE_CODES.includes(code);
    const calls = [...this._calls.values()];
    this._calls.clear();
    for (const call of calls) {
      if (call._connectionLost(error, willReconnect)) this._pending.add(call);
    }
    if (!willReconnect) return this._giveUp(error);
    this._setState("reconnecting");
    this._retry();
  }

  _retry() {
    const ceiling = Math.min(this.reconnectMax, this.reconnectInitial * 2 ** this._attempt);
    this._attempt += 1;
    const delay = Math.random() * ceiling; // full jitter: no herd after a server restart
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._closing) this._connect();
    }, delay * 1000);
  }

  _giveUp(error) {
    this._closing = true;
    clearTimeout(this._retryTimer);
    clearTimeout(this._noHello);
    this._stopHeartbeat();
    this._opened.reject(error);
    const calls = [...this._calls.values(), ...this._pending];
    this._calls.clear();
    this._pending.clear();
    for (const call of calls) call._terminate(error);
    this._setState("closed");
  }

  /**
   * Close the connection; calls still open fail with `Unavailable`, new ones are refused.
   * @returns {Promise<void>} resolved once the socket is closed (at most about a second)
   */
  close() {
    const ws = this._ws;
    this._ws = null;
    if (this.state !== "closed") {
      this.closeCode = 1000;
      this._giveUp(new Unavailable("The client was closed.", { close_code: 1000 }));
    }
    this._closing = true;
    if (!ws || ws.readyState === 3) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000);
      ws.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        ws.close(1000);
      } catch {
        resolve();
      }
    });
  }

  // -- heartbeats ---------------------------------------------------------------------------

  /**
   * Ping the server after `heartbeat` seconds of silence; after twice that
   * with nothing heard, the connection is dead: it is dropped and handled as
   * closed with 4408 (reconnectable).
   */
  _startHeartbeat(ws, hello) {
    const seconds = this.heartbeat === undefined ? Number(hello.heartbeat) : this.heartbeat;
    if (!seconds || seconds <= 0) return;
    const interval = seconds * 1000;
    this._lastSeen = clock();
    this._lastPing = 0;
    let pings = 0;
    this._beat = unref(
      setInterval(() => {
        if (this._ws !== ws) return;
        const silent = clock() - this._lastSeen;
        if (silent >= 2 * interval) return this._drop(ws, HEARTBEAT_TIMEOUT, true);
        if (silent >= interval && this._lastPing <= this._lastSeen) {
          this._lastPing = clock();
          this._sendFrame({ t: "ping", d: ++pings });
        }
      }, Math.max(10, interval / 4)),
    );
  }

  _stopHeartbeat() {
    clearInterval(this._beat);
    this._beat = null;
  }

  // -- calls ---------------------------------------------------------------------------------

  /**
   * A unary call: its result, or the `StreamError` it failed with.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {{timeout?: number, signal?: AbortSignal}} [options]
   */
  call(method, args, options = {}) {
    const call = new Call(this, "unary", method, args, options);
    call._start();
    return call.result();
  }

  /**
   * A server stream: `for await (const item of client.stream(...))`; `.result` after the loop.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {{timeout?: number, signal?: AbortSignal, window?: number | null, resume?: string}} [options]
   * @returns {Stream}
   */
  stream(method, args, options = {}) {
    return new Stream(this, method, args, options);
  }

  /**
   * A client-stream or bidirectional call, once its call frame is sent: `send()`, `end()`,
   * `for await` over the server's items, `result()`.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {{timeout?: number, signal?: AbortSignal, window?: number | null}} [options]
   * @returns {Promise<Call>}
   */
  async open(method, args, options = {}) {
    const call = new Call(this, "open", method, args, options);
    await call._start();
    return call;
  }

  // -- plumbing ------------------------------------------------------------------------------

  /** @internal */
  _enqueue(call) {
    if (this.state === "open" && this._ws) this._issue(call);
    else if (this.state === "closed") call._terminate(new Unavailable("The client is not connected.", { close_code: this.closeCode }));
    else this._pending.add(call);
  }

  _issue(call) {
    if (call._serverDone) return; // stopped while it waited
    const frame = { t: "call", id: ++this._lastId, m: call.method };
    if (Object.keys(call.args).length) frame.a = call.args;
    if (call.window !== null) frame.credit = call.window;
    const remaining = call._remaining();
    if (remaining !== null) {
      if (remaining <= 0) return call._terminate(new DeadlineExceeded());
      frame.timeout = remaining;
    }
    if (call.kind === "stream" && call.lastEventId !== null) frame.resume = call.lastEventId;
    call._awaitingReady = "resume" in frame;
    call.id = frame.id;
    call._consumed = 0;
    call._outbound = this.clientWindow;
    try {
      this._sendFrame(frame, true);
    } catch (error) {
      return call._terminate(error);
    }
    call._onWire = true;
    this._calls.set(call.id, call);
    call._issued.resolve(call);
  }

  /** @internal */
  _forget(call) {
    if (this._calls.get(call.id) === call) this._calls.delete(call.id);
    this._pending.delete(call);
  }

  /** @internal */
  _cancelOnWire(call) {
    if (call._onWire) this._sendFrame({ t: "cancel", id: call.id });
  }

  /**
   * Send one frame; with `required`, throw `Unavailable` when there is no open
   * connection and `ResourceExhausted` for a frame over `limits.max_frame`.
   * @internal
   */
  _sendFrame(frame, required = false) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) {
      if (required) throw new Unavailable("The connection is closed.", { close_code: this.closeCode });
      return;
    }
    const text = JSON.stringify(frame);
    const limit = this.hello?.limits?.max_frame;
    if (limit && text.length * 3 > limit && utf8Length(text) > limit) {
      // The server would close the whole connection with 4413.
      if (required) throw new ResourceExhausted("The frame is larger than the server's frame limit.", { max_frame: limit });
      return;
    }
    ws.send(text);
  }

  _receive(data) {
    if (typeof data !== "string") return; // binary messages are not part of the JSON subprotocol
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    switch (frame.t) {
      case "next":
      case "end":
      case "error":
      case "ready":
        if (frame.id === null || frame.id === undefined) {
          if (frame.t === "error") this.dispatchEvent(new CustomEvent("error", { detail: errorFromBody(frame) }));
          return;
        }
        this._calls.get(frame.id)?._deliver(frame);
        return;
      case "credit":
        this._calls.get(frame.id)?._grantOutbound(frame.n);
        return;
      case "ping":
        this._sendFrame("d" in frame ? { t: "pong", d: frame.d } : { t: "pong" });
        return;
      default:
        return; // pong, and frame types of later versions
    }
  }
}

// -- tickets ---------------------------------------------------------------------------------

/**
 * A `ticket` option for browsers: a function that POSTs to the ticket
 * endpoint with the session cookie and CSRF token and returns a fresh
 * single-use ticket (asked anew for every connection, so reconnects work).
 *
 *     new StreamClient("wss://api.example.com/ws/", { ticket: ticketFetcher("/streams/_ticket") })
 *
 * @param {string} [url] the ticket endpoint, `/streams/_ticket` by default
 * @param {{fetch?: typeof fetch, csrfToken?: string, headers?: Record<string, string>, credentials?: RequestCredentials}} [options]
 * @returns {() => Promise<string>}
 */
export function ticketFetcher(url = "/streams/_ticket", options = {}) {
  return async () => {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    const csrf = options.csrfToken ?? pageCsrfToken(url);
    const headers = { Accept: "application/json", ...options.headers };
    if (csrf) headers["X-CSRFToken"] = csrf;
    const response = await fetchImpl(url, { method: "POST", headers, credentials: options.credentials ?? "same-origin" });
    if (!response.ok) throw await httpError(response);
    return (await response.json()).ticket;
  };
}

// -- Server-Sent Events over fetch -----------------------------------------------------------

const HTTP_STATUS_CODES = {
  400: "invalid_argument",
  401: "unauthenticated",
  403: "permission_denied",
  404: "not_found",
  429: "resource_exhausted",
  499: "cancelled",
  501: "unimplemented",
  503: "unavailable",
  504: "deadline_exceeded",
};

/**
 * The typed error of a non-2xx HTTP response: its JSON body
 * `{"error": {"code", "message", "details"}}`, or else the code of its status
 * (`details.status` set in both cases).
 * @param {Response} response
 * @returns {Promise<StreamError>}
 */
export async function httpError(response) {
  let body;
  try {
    body = await response.json();
  } catch {}
  if (body && typeof body.error === "object" && body.error !== null) {
    const error = errorFromBody(body.error);
    error.details = { ...error.details, status: response.status };
    return error;
  }
  const code = HTTP_STATUS_CODES[response.status] ?? (response.status >= 500 ? "internal" : "unknown");
  return StreamError.forCode(code, `HTTP ${response.status} ${response.statusText || ""}`.trim(), { status: response.status });
}

/**
 * An incremental parser of a `text/event-stream` body (the WHATWG
 * Server-Sent Events rules): lines end in CRLF, LF or CR, `data` lines join
 * with "\n", comments (`:` lines) are skipped, `id` persists across events,
 * an event without data is not dispatched, and an event cut off by the end of
 * the stream is dropped. Chunks may split lines, line ends and UTF-8
 * characters anywhere.
 */
export class SseParser {
  constructor() {
    this._decoder = new TextDecoder("utf-8");
    this._buffer = "";
    this._started = false;
    this._afterCR = false;
    this._data = [];
    this._event = "";
    /** The last event id (`id:` field), `""` if none. */
    this.lastEventId = "";
    /** The `retry:` field, in milliseconds, if the server sent one. @type {number | null} */
    this.retry = null;
    /** How many comment lines (keepalives) were seen. */
    this.comments = 0;
  }

  /**
   * Feed a chunk (bytes or text); returns the events it completed.
   * @param {Uint8Array | string} chunk
   * @returns {{event: string, data: string, id: string}[]}
   */
  push(chunk) {
    let text = typeof chunk === "string" ? chunk : this._decoder.decode(chunk, { stream: true });
    if (!this._started && text.length) {
      this._started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this._afterCR && text.length) {
      this._afterCR = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1); // the LF of a CRLF split across chunks
    }
    const events = [];
    const buffer = this._buffer + text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this._line(buffer.slice(start, i), events);
      if (c === 13) {
        if (i + 1 === buffer.length) this._afterCR = true;
        else if (buffer.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this._buffer = buffer.slice(start);
    return events;
  }

  /** The end of the body: anything not yet dispatched is dropped, as the spec says. */
  end() {
    this._decoder.decode();
    this._buffer = "";
    this._data = [];
    this._event = "";
    return [];
  }

  _line(line, events) {
    if (line === "") {
      if (this._data.length) events.push({ event: this._event || "message", data: this._data.join("\n"), id: this.lastEventId });
      this._data = [];
      this._event = "";
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.comments += 1;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") this._data.push(value);
    else if (field === "event") this._event = value;
    else if (field === "id") {
      if (!value.includes("\0")) this.lastEventId = value;
    } else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
  }
}

/**
 * A server stream over HTTP as Server-Sent Events, read with `fetch`, so
 * that it can carry headers and a POST body (which `EventSource` cannot):
 * `for await (const item of sseStream(url, args, options))`, then `.result`.
 * `break`, `return()` and the `AbortSignal` close the response, which
 * cancels the call on the server. Errors are the same typed `StreamError`s.
 */
export class SseStream {
  /**
   * @param {string | URL} url e.g. `"/streams/interop.count"`
   * @param {Record<string, any>} [args]
   * @param {import("./client.d.ts").SseOptions} [options]
   */
  constructor(url, args, options = {}) {
    this.url = url;
    this.args = args ?? {};
    this.options = options;
    /** The id of the last event handed to the caller (resumable streams), or `null`. */
    this.lastEventId = options.lastEventId ?? null;
    /** The `ready` event's data of a resumable stream. */
    this.ready = null;
    this._events = [];
    this._parser = new SseParser();
    this._reader = null;
    this._controller = new AbortController();
    this._finished = false;
    this._result = undefined;
    this._timedOut = false;
    this._timer = null;
    this._onAbort = null;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async _open() {
    const options = this.options;
    const method = (options.method ?? "POST").toUpperCase();
    const headers = { Accept: "text/event-stream", ...options.headers };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let url = typeof location === "undefined" ? String(this.url) : new URL(String(this.url), location.href).href;
    let body;
    if (method === "GET") {
      const query = new URLSearchParams();
      for (const [key, value] of Object.entries(this.args)) query.append(key, typeof value === "string" ? value : JSON.stringify(value));
      if ([...query].length) url += (url.includes("?") ? "&" : "?") + query;
    } else {
      body = JSON.stringify(this.args);
      headers["Content-Type"] = "application/json";
      const csrf = options.csrfToken ?? pageCsrfToken(url);
      if (csrf && !("X-CSRFToken" in headers)) headers["X-CSRFToken"] = csrf;
    }
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) throw signal.reason;
      this._onAbort = () => this._controller.abort(signal.reason);
      signal.addEventListener("abort", this._onAbort, { once: true });
    }
    if (options.timeout != null) {
      this._timer = setTimeout(() => {
        this._timedOut = true;
        this._controller.abort(new DeadlineExceeded());
      }, options.timeout * 1000);
    }
    const fetchImpl = options.fetch ?? globalThis.fetch;
    const response = await fetchImpl(url, {
      method,
      headers,
      body,
      signal: this._controller.signal,
      credentials: options.credentials ?? "same-origin",
      cache: "no-store",
    });
    if (!response.ok) throw await httpError(response);
    const type = response.headers.get("Content-Type") ?? "";
    if (!type.startsWith("text/event-stream")) {
      throw new Unknown(`Expected text/event-stream, got ${type || "no Content-Type"}.`, { status: response.status });
    }
    this._reader = response.body.getReader();
  }

  /** @returns {Promise<IteratorResult<any>>} */
  async next() {
    if (this._finished) return DONE;
    try {
      if (this._reader === null) await this._open();
      for (;;) {
        const event = this._events.shift();
        if (event === undefined) {
          const { value, done } = await this._reader.read();
          if (done) {
            this._parser.end();
            throw new Unavailable("The response ended before the stream's end.", { last_event_id: this.lastEventId });
          }
          this._events.push(...this._parser.push(value));
          continue;
        }
        switch (event.event) {
          case "next":
            if (event.id) this.lastEventId = event.id;
            return { value: JSON.parse(event.data), done: false };
          case "end":
            this._result = JSON.parse(event.data);
            this._finish(false);
            return DONE;
          case "error":
            throw errorFromBody(JSON.parse(event.data));
          case "ready": {
            const ready = JSON.parse(event.data);
            this.ready = ready;
            if (ready?.recovered === false) throw new StateLost(undefined, { resume: this.lastEventId, eid: ready.eid });
            if (typeof ready?.eid === "string") this.lastEventId = ready.eid;
            else if (event.id) this.lastEventId = event.id;
            continue;
          }
          default:
            continue; // "message" and event types of later versions
        }
      }
    } catch (error) {
      this._finish(true);
      throw this._translate(error);
    }
  }

  _translate(error) {
    if (this._timedOut) return new DeadlineExceeded();
    const signal = this.options.signal;
    if (signal?.aborted) return signal.reason;
    if (error instanceof StreamError) return error;
    if (error instanceof SyntaxError) return new Internal(`The server sent an event that is not JSON: ${error.message}`);
    return new Unavailable(`The HTTP stream failed: ${error?.message ?? error}`, { last_event_id: this.lastEventId });
  }

  _finish(abort) {
    if (this._finished) return;
    this._finished = true;
    clearTimeout(this._timer);
    if (this._onAbort) this.options.signal.removeEventListener("abort", this._onAbort);
    if (abort) this._controller.abort(new Cancelled());
  }

  /** Stop reading: closes the response, which cancels the call on the server. */
  async return(value) {
    const reader = this._reader;
    this._finish(true);
    if (reader) await reader.cancel().catch(() => {});
    return { value, done: true };
  }

  async throw(error) {
    await this.return();
    throw error;
  }

  /** The stream's return value (the `end` event's data), once iteration has finished. */
  get result() {
    if (!this._finished) throw new Error("the stream's result is known once iteration has finished");
    return this._result;
  }
}

/**
 * `new SseStream(url, args, options)`: a server stream over HTTP (SSE).
 * @param {string | URL} url
 * @param {Record<string, any>} [args]
 * @param {import("./client.d.ts").SseOptions} [options]
 * @returns {SseStream}
 */
export function sseStream(url, args, options) {
  return new SseStream(url, args, options);
}
