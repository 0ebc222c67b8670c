/**
 * One call in flight on a `StreamClient`, and its state machine.
 *
 * A call talks to its connection only through a `CallChannel` (queue me, send
 * a frame, forget me); the connection feeds it the frames of its id.
 * @module
 */

import { Cancelled, DeadlineExceeded, StateLost, errorFromBody } from "./errors.js";
import { deferred } from "./deferred.js";
import { clock } from "./timers.js";

/** @typedef {import("./frames.js").CallFrame} CallFrame */
/** @typedef {import("./frames.js").ClientFrame} ClientFrame */
/** @typedef {import("./frames.js").ReadyFrame} ReadyFrame */
/** @typedef {import("./connection.js").StreamClient} StreamClient */
/** @typedef {import("./client.js").OpenOptions & {resume?: string}} CallOptions */

/**
 * What a call needs of its connection; `StreamClient` implements it.
 * @typedef {object} CallChannel
 * @property {(call: BaseCall) => void} enqueue put the call on the wire now if connected, else once connected
 * @property {(frame: ClientFrame, required?: boolean) => void} send send a frame; with `required`, throw a `StreamError` if it cannot be sent
 * @property {(call: BaseCall) => void} forget the call has ended: deliver nothing more to it
 */

/**
 * Where a call is (declared, with what each state means, in client.d.ts):
 * `new` → `waiting` for a connection → `resuming` (sent with `resume`, until
 * `ready`) or `running` → `half_closed` (client-stream and bidirectional
 * calls) → `ended` (the server sends nothing more) → `done` (the caller has
 * seen the end). A resumable stream whose connection drops goes back to
 * `waiting`; stopping a call takes it to `done` from anywhere.
 * @typedef {import("./client.js").CallState} CallState
 */

/**
 * The states each state may move to; anything else is a bug and throws.
 * @type {Readonly<Record<CallState, readonly CallState[]>>}
 */
export const CALL_TRANSITIONS = Object.freeze({
  new: ["waiting", "done"],
  waiting: ["resuming", "running", "ended", "done"],
  resuming: ["running", "waiting", "ended", "done"],
  running: ["half_closed", "waiting", "ended", "done"],
  half_closed: ["ended", "done"],
  ended: ["done"],
  done: [],
});

/** States in which the server runs the call on the current connection. */
const ON_WIRE = new Set(["resuming", "running", "half_closed"]);

/** @type {IteratorReturnResult<undefined>} */
const DONE = Object.freeze({ value: undefined, done: true });

/**
 * What a call holds for its caller: items, then one terminal entry.
 * @typedef {{t: "next", d: any, eid?: string} | {t: "end", d?: any} | {t: "error", error: Error}} Queued
 */

/**
 * What every call shares: its state machine, the frames the connection feeds
 * it, deadlines, cancellation, credit, and the client half (`send()`,
 * `end()`, refused unless `client.open()` made the call). `Call` and `Stream`
 * add how the caller reads it.
 */
export class BaseCall {
  /**
   * @param {StreamClient} client
   * @param {CallChannel} channel
   * @param {"unary" | "stream" | "open"} kind
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {CallOptions} [options]
   * @internal
   */
  constructor(client, channel, kind, method, args, options = {}) {
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
    /** The last `ready` frame of a resumable stream. @type {ReadyFrame | null} */
    this.ready = null;
    /** @type {CallState} */
    this._state = "new";
    this._channel = channel;
    this._deadline = options.timeout != null ? clock() + options.timeout * 1000 : null;
    this._signal = options.signal ?? null;
    /** @type {Queued[]} */
    this._queue = [];
    /** @type {(() => void)[]} */
    this._wakers = [];
    /** @type {(() => void)[]} */
    this._sendWaiters = [];
    /** Items the client half may still send before the server grants more. */
    this._outbound = 0;
    /** Items consumed since credit was last given back. */
    this._consumed = 0;
    /** What `send()` throws once the server half is over. @type {Error | null} */
    this._terminal = null;
    /** The end's value, once the caller has seen it. @type {any} */
    this._result = undefined;
    /** The error the caller sees at the end (`null`: a plain end). @type {Error | null} */
    this._error = null;
    /** Resolved once the call frame is on the wire; rejected if the call ends first. @type {import("./deferred.js").Deferred<this>} */
    this._issued = deferred();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    /** @type {(() => void) | null} */
    this._onAbort = null;
  }

  /**
   * Where the call is (see `CallState`).
   * @returns {CallState}
   */
  get state() {
    return this._state;
  }

  /**
   * Move to `next`, refusing a move the state machine does not have.
   * @param {CallState} next
   */
  _moveTo(next) {
    const allowed = CALL_TRANSITIONS[this._state];
    if (!allowed.includes(next)) {
      const expected = allowed.length ? allowed.join(", ") : "nothing (it is final)";
      throw new Error(`call ${this.id} (${this.method}): cannot go from ${this._state} to ${next}; expected ${expected}`);
    }
    this._state = next;
  }

  /** Whether the server runs the call on the current connection. @internal */
  get _onWire() {
    return ON_WIRE.has(this._state);
  }

  /** Whether the server sends nothing more for this call. */
  get _serverDone() {
    return this._state === "ended" || this._state === "done";
  }

  /**
   * Queue the call on the client: sent at once when connected, else when the connection opens.
   * @returns {Promise<this>}
   * @internal
   */
  _start() {
    if (this._state !== "new") return this._issued.promise; // started, or cancelled before it started
    this._moveTo("waiting");
    const signal = this._signal;
    if (signal) {
      if (signal.aborted) {
        this._stop(signal.reason);
        return this._issued.promise;
      }
      const onAbort = () => this._stop(signal.reason);
      this._onAbort = onAbort;
      signal.addEventListener("abort", onAbort, { once: true });
    }
    this._armDeadline();
    this._channel.enqueue(this);
    return this._issued.promise;
  }

  /**
   * The server enforces the deadline of a call it runs; this timer ends a call
   * waiting for a connection (a new one, or a stream to resume) when it passes.
   */
  _armDeadline() {
    const deadline = this._deadline;
    if (deadline === null) return;
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      if (this._state === "waiting") this._stop(new DeadlineExceeded("The deadline passed while the call waited for a connection."));
    }, Math.max(0, deadline - clock()));
  }

  /**
   * Put a waiting call on the connection as `id`: send its call frame.
   * Returns whether it is now on the wire; if not, it has ended (its
   * deadline passed, or the frame could not be sent) or was stopped.
   * @param {number} id
   * @param {number} clientWindow items the client half may send before any credit
   * @returns {boolean}
   * @internal
   */
  _issue(id, clientWindow) {
    if (this._state !== "waiting") return false; // stopped while it waited
    /** @type {ClientFrame & {t: "call"}} */
    const frame = { t: "call", id, m: this.method };
    if (Object.keys(this.args).length) frame.a = this.args;
    if (this.window !== null) frame.credit = this.window;
    if (this._deadline !== null) {
      const remaining = (this._deadline - clock()) / 1000;
      if (remaining <= 0) {
        this._terminate(new DeadlineExceeded());
        return false;
      }
      frame.timeout = remaining;
    }
    if (this.kind === "stream" && this.lastEventId !== null) frame.resume = this.lastEventId;
    this.id = id;
    this._consumed = 0;
    this._outbound = clientWindow;
    try {
      this._channel.send(frame, true);
    } catch (error) {
      this._terminate(/** @type {Error} */ (error));
      return false;
    }
    this._moveTo(frame.resume === undefined ? "running" : "resuming");
    this._issued.resolve(this);
    return true;
  }

  // -- fed by the connection -------------------------------------------------------------

  /**
   * A frame the server sent for this call.
   * @param {CallFrame} frame
   * @internal
   */
  _deliver(frame) {
    switch (frame.t) {
      case "next":
        if (this._state === "resuming") {
          // A server that resumes a stream says so with `ready` first; without
          // it, events after the resume point may be missing.
          return this._stateLost(frame.eid, "The server did not confirm the resume (no ready frame); events may be missing.");
        }
        this._queue.push(frame);
        break;
      case "ready":
        this.ready = frame;
        if (this._state === "resuming") this._moveTo("running");
        if (frame.recovered === false) return this._stateLost(frame.eid);
        if (typeof frame.eid === "string") this.lastEventId = frame.eid;
        return;
      case "end":
        this._serverEnded("ended", null);
        this._queue.push(frame);
        break;
      case "error": {
        const error = errorFromBody(frame);
        this._serverEnded("ended", error);
        this._queue.push({ t: "error", error });
        break;
      }
      default:
        return;
    }
    this._wake();
  }

  /**
   * The stream cannot continue from where the caller is: end it with `StateLost`.
   * @param {string | undefined} eid the server's position
   * @param {string} [message]
   */
  _stateLost(eid, message) {
    const details = { resume: this.lastEventId, eid: eid ?? null };
    this._cancelOnWire();
    this._terminate(new StateLost(message, details));
  }

  /**
   * The server granted `n` more items on the client half.
   * @param {unknown} n
   * @internal
   */
  _grantOutbound(n) {
    if (typeof n === "number" && Number.isInteger(n) && n > 0) {
      this._outbound += n;
      this._wakeSenders();
    }
  }

  /**
   * The server ended the call, or it can no longer: move to `next` ("ended"
   * or "done"); no frame follows for it.
   * @param {"ended" | "done"} next
   * @param {Error | null} error
   */
  _serverEnded(next, error) {
    this._moveTo(next);
    this._terminal = error ?? new Error(`call ${this.id} (${this.method}) has ended`);
    this._channel.forget(this);
    this._wakeSenders();
    this._release();
  }

  /**
   * End the call with `error` after the items already received (e.g. the connection was lost).
   * @param {Error} error
   * @internal
   */
  _terminate(error) {
    if (this._serverDone) return;
    this._serverEnded("ended", error);
    this._queue.push({ t: "error", error });
    this._wake();
    this._issued.reject(error);
  }

  /**
   * End the call now: `error` (or a plain end when null) is what the caller
   * sees next; items not yet read are dropped. A call the server still runs
   * is cancelled there.
   * @param {Error | null} error
   */
  _stop(error) {
    if (this._state === "done") return;
    this._cancelOnWire();
    if (this._serverDone) this._moveTo("done");
    else this._serverEnded("done", error);
    this._error = error;
    this._queue.length = 0;
    this._wake();
    this._issued.reject(error ?? new Cancelled());
  }

  _cancelOnWire() {
    if (this._onWire && this.id !== null) this._channel.send({ t: "cancel", id: this.id });
  }

  /**
   * The connection was lost while the server ran this call. Returns whether
   * the call waits for the next connection (a resumable stream) rather than
   * ending with `error`.
   * @param {Error} error
   * @param {boolean} willReconnect
   * @returns {boolean}
   * @internal
   */
  _connectionLost(error, willReconnect) {
    if (willReconnect && this.kind === "stream" && this.ready !== null && this.lastEventId !== null) {
      // Resumable (the server sent `ready`): re-issued with `resume` on the
      // next connection. Items not yet handed to the caller come again after
      // the resume point.
      this._moveTo("waiting");
      this._queue = this._queue.filter((entry) => entry.t !== "next");
      this._armDeadline();
      return true;
    }
    this._terminate(error);
    return false;
  }

  _release() {
    clearTimeout(this._timer);
    if (this._onAbort) this._signal?.removeEventListener("abort", this._onAbort);
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

  /**
   * The next item, or done; throws the error the call failed with.
   * @returns {Promise<IteratorResult<any, undefined>>}
   * @internal
   */
  async _next() {
    this._start();
    for (;;) {
      if (this._state === "done") {
        if (this._error) throw this._error;
        return DONE;
      }
      const entry = this._queue.shift();
      if (entry === undefined) {
        await new Promise((resolve) => this._wakers.push(() => resolve(undefined)));
        continue;
      }
      if (entry.t === "next") {
        if (typeof entry.eid === "string") this.lastEventId = entry.eid;
        this._consumedOne();
        return { value: entry.d, done: false };
      }
      this._moveTo("done");
      if (entry.t === "end") this._result = entry.d ?? null;
      else this._error = entry.error;
      this._release();
    }
  }

  /** Credit back to the server, half a window at a time, as the caller consumes. */
  _consumedOne() {
    if (this.window === null || !this._onWire || this.id === null) return;
    this._consumed += 1;
    if (this._consumed * 2 >= this.window) {
      this._channel.send({ t: "credit", id: this.id, n: this._consumed });
      this._consumed = 0;
    }
  }

  /** @returns {Promise<IteratorResult<any, undefined>>} */
  async _nextOrCancel() {
    try {
      return await this._next();
    } catch (error) {
      this.cancel();
      throw error;
    }
  }

  // -- client half (client-stream and bidirectional calls; refused on the others) ---------------

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
      if (this._state === "half_closed") throw new Error(`call ${this.id} (${this.method}): end() was called; no more items can be sent`);
      if (this._state === "done" && this._error) throw this._error;
      if (this._serverDone) throw this._terminal;
      if (this._outbound > 0) break;
      await new Promise((resolve) => this._sendWaiters.push(() => resolve(undefined)));
    }
    this._outbound -= 1;
    try {
      this._channel.send({ t: "next", id: /** @type {number} */ (this.id), d: item }, true);
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
    if (this._state === "running") {
      this._moveTo("half_closed");
      this._channel.send({ t: "end", id: /** @type {number} */ (this.id) });
    }
  }

  /** @param {string} what */
  _clientHalf(what) {
    if (this.kind !== "open") throw new TypeError(`${what}(): ${this.method} is a ${this.kind} call, with no items from the client; use client.open()`);
  }

  /** Stop the call on the server (its handler's `finally` runs); nothing more is received. */
  cancel() {
    this._stop(null);
  }
}

/**
 * One call in flight. `client.call()` uses it internally; `client.open()`
 * returns one for client streams and bidirectional calls: `send()`, `end()`,
 * `for await` over the server's items, `result()`.
 */
export class Call extends BaseCall {
  /**
   * Iterate the server's items; leaving the loop early (`break`, `return()`,
   * an exception) cancels the call on the server.
   * @returns {AsyncIterableIterator<any>}
   */
  [Symbol.asyncIterator]() {
    return {
      next: () => this._nextOrCancel(),
      /** @param {any} [value] */
      return: async (value) => {
        this.cancel();
        return { value, done: true };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
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
}

/**
 * A server stream: `for await (const item of stream)`, then `stream.result`.
 * The call starts on the first `next()`; `break`, `return()` or the
 * `AbortSignal` of the options cancel it on the server.
 */
export class Stream extends BaseCall {
  /**
   * @param {StreamClient} client
   * @param {CallChannel} channel
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {CallOptions} [options]
   * @internal
   */
  constructor(client, channel, method, args, options) {
    super(client, channel, "stream", method, args, options);
  }

  /** @returns {this} */
  [Symbol.asyncIterator]() {
    return this;
  }

  /** @returns {Promise<IteratorResult<any, undefined>>} */
  next() {
    return this._nextOrCancel();
  }

  /**
   * Stop iterating: cancels the call on the server if it is still running.
   * @param {any} [value]
   * @returns {Promise<IteratorResult<any, any>>}
   */
  async return(value) {
    this.cancel();
    return { value, done: true };
  }

  /**
   * @param {any} [error]
   * @returns {Promise<IteratorResult<any, any>>}
   */
  async throw(error) {
    this.cancel();
    throw error;
  }

  /** The stream's return value, once iteration has finished (`undefined` if it was cancelled). */
  get result() {
    if (this._state !== "done") throw new Error("the stream's result is known once iteration has finished");
    return this._result;
  }
}
