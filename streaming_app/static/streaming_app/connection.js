/**
 * `StreamClient`: one multiplexed WebSocket connection to a streaming_app
 * server, its reconnection, heartbeats and the calls it carries.
 * @module
 */

import { BaseCall, Call, Stream } from "./call.js";
import { CloseCode, RECONNECT_CLOSE_CODES, SUBPROTOCOL } from "./codes.js";
import { deferred } from "./deferred.js";
import { ResourceExhausted, StreamError, Unauthenticated, Unavailable, errorFromBody } from "./errors.js";
import { resolveWebSocketUrl } from "./page.js";
import { pause, retryThrottledPolicy, throttledDelay } from "./pushback.js";
import { Heartbeat, clock, reconnectDelay } from "./timers.js";

/** @typedef {import("./client.js").ConnectionState} ConnectionState */
/** @typedef {import("./client.js").StreamClientOptions} StreamClientOptions */
/** @typedef {import("./client.js").CallOptions} CallOptions */
/** @typedef {import("./client.js").OpenOptions} OpenOptions */
/** @typedef {import("./client.js").StreamOptions} StreamOptions */
/** @typedef {import("./client.js").WebSocketConstructor} WebSocketConstructor */
/** @typedef {import("./client.js").WebSocketLike} WebSocketLike */
/** @typedef {import("./client.js").StateChangeDetail} StateChangeDetail */
/** @typedef {import("./frames.js").HelloFrame} HelloFrame */
/** @typedef {import("./frames.js").ClientFrame} ClientFrame */
/** @typedef {import("./call.js").CallChannel} CallChannel */

/**
 * The socket as the client uses it: the WHATWG API, and `terminate()` where
 * the `ws` package has it.
 * @typedef {import("./client.js").WebSocketLike & {
 *   onopen?: unknown,
 *   onmessage: ((event: {data: unknown}) => void) | null,
 *   onclose: ((event: {code: number}) => void) | null,
 *   onerror: ((event: unknown) => void) | null,
 *   terminate?: () => void,
 * }} Socket
 */

/** @type {TextEncoder | undefined} */
let encoder;
/** @param {string} text */
function utf8Length(text) {
  encoder ??= new TextEncoder();
  return encoder.encode(text).length;
}

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
/**
 * Node's built-in WebSocket: the global class, in a process that is Node.
 * @param {WebSocketConstructor} WebSocketClass
 * @returns {boolean}
 */
function isNodeWebSocket(WebSocketClass) {
  const process = /** @type {{process?: {versions?: {node?: string}}}} */ (/** @type {unknown} */ (globalThis)).process;
  return WebSocketClass === /** @type {unknown} */ (globalThis.WebSocket) && typeof process?.versions?.node === "string";
}

/** @typedef {new (url: string, init: {protocols: string[], headers: Record<string, string>}) => WebSocketLike} NodeWebSocketConstructor */

export class StreamClient extends EventTarget {
  /**
   * @param {string | URL} url e.g. `"ws://127.0.0.1:8000/ws/"`; in a page `"/ws/"` is enough
   * @param {StreamClientOptions} [options]
   */
  constructor(url, options = {}) {
    super();
    /** @type {string} */
    this.url = resolveWebSocketUrl(url);
    const WebSocketClass = options.WebSocket ?? /** @type {WebSocketConstructor | undefined} */ (globalThis.WebSocket);
    if (typeof WebSocketClass !== "function") {
      throw new TypeError("No WebSocket class: pass one as options.WebSocket (e.g. the ws package), or run Node 22+ / Node 20 with --experimental-websocket.");
    }
    this._WebSocket = WebSocketClass;
    /** @type {Record<string, string>} */
    const headers = { ...options.headers };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    // Node's own WebSocket (undici: Node 22, Node 20 with --experimental-websocket) takes
    // handshake headers as `new WebSocket(url, {protocols, headers})`; a browser's takes none.
    this._initDict = !options.WebSocket && isNodeWebSocket(WebSocketClass);
    if (Object.keys(headers).length && !options.WebSocket && !this._initDict) {
      throw new TypeError("Headers (and token) need a WebSocket class that accepts them: Node's built-in one, or one passed as options.WebSocket (e.g. the ws package); in a browser use the session cookie or a ticket.");
    }
    this._headers = Object.keys(headers).length ? headers : null;
    /** @type {string | (() => string | Promise<string>) | null} */
    this.ticket = options.ticket ?? null;
    /** Default credit window of streams (`null`: unbounded). @type {number | null} */
    this.window = options.window === undefined ? 64 : options.window;
    this.reconnect = options.reconnect ?? true;
    this.reconnectInitial = options.reconnectInitial ?? 0.1;
    this.reconnectMax = options.reconnectMax ?? 10;
    this.openTimeout = options.openTimeout ?? 10;
    /**
     * How `call()` retries a throttled call after the server's `retryAfter`, or `null`: it does not.
     * @type {import("./pushback.js").RetryThrottled | null}
     */
    this.retryThrottled = retryThrottledPolicy(options.retryThrottled);
    /** @type {number | false | undefined} */
    this.heartbeat = options.heartbeat;
    /** @type {ConnectionState} */
    this.state = "connecting";
    /** The server's `hello` frame of the current connection. @type {HelloFrame | null} */
    this.hello = null;
    /** Items a call may send before the server grants credit (`hello.limits.client_window`). */
    this.clientWindow = 0;
    /** The close code of the last connection. @type {number | null} */
    this.closeCode = null;
    /** @type {Socket | null} */
    this._ws = null;
    this._everOpen = false;
    /** @type {number | undefined} the HTTP status of a refused handshake, when the WebSocket says it */
    this._handshakeStatus = undefined;
    this._attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._noHello = undefined;
    /** @type {Heartbeat | null} */
    this._heartbeat = null;
    this._closing = false;
    this._lastId = 0;
    /** Calls the server runs on this connection, by id. @type {Map<number, BaseCall>} */
    this._calls = new Map();
    /** Calls waiting for a connection (new ones, or resumable streams to re-issue). @type {Set<BaseCall>} */
    this._pending = new Set();
    /** @type {CallChannel} */
    this._channel = {
      enqueue: (call) => this._enqueue(call),
      send: (frame, required) => this._sendFrame(frame, required),
      forget: (call) => this._forget(call),
    };
    /** @type {import("./deferred.js").Deferred<HelloFrame>} */
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
   * @param {(state: ConnectionState, client: StreamClient) => void} callback
   * @returns {() => void}
   */
  onStateChange(callback) {
    /** @param {Event} event */
    const listener = (event) => callback(/** @type {CustomEvent<StateChangeDetail>} */ (event).detail.state, this);
    this.addEventListener("statechange", listener);
    return () => this.removeEventListener("statechange", listener);
  }

  /**
   * The events of the client: `statechange` and `error` carry their detail.
   * @overload
   * @param {"statechange"} type
   * @param {(event: CustomEvent<StateChangeDetail>) => void} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {"error"} type
   * @param {(event: CustomEvent<StreamError>) => void} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @overload
   * @param {string} type
   * @param {EventListenerOrEventListenerObject | null} listener
   * @param {boolean | AddEventListenerOptions} [options]
   * @returns {void}
   */
  /**
   * @param {string} type
   * @param {any} listener
   * @param {boolean | AddEventListenerOptions} [options]
   */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
  }

  /** @param {ConnectionState} state */
  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._emitState(state, previous);
  }

  /**
   * @param {ConnectionState} state
   * @param {ConnectionState} previous
   */
  _emitState(state, previous) {
    /** @type {StateChangeDetail} */
    const detail = { state, previous, closeCode: this.closeCode };
    this.dispatchEvent(new CustomEvent("statechange", { detail }));
  }

  // -- connecting --------------------------------------------------------------------------

  /** @returns {Promise<string>} the URL to connect to, with a fresh ticket if there is one */
  async _connectUrl() {
    let ticket = this.ticket;
    if (typeof ticket === "function") ticket = await ticket();
    if (!ticket) return this.url;
    return `${this.url}${this.url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket)}`;
  }

  async _connect() {
    /** @type {Socket} */
    let ws;
    try {
      const url = await this._connectUrl();
      if (this._closing) return;
      ws = /** @type {Socket} */ (
        !this._headers
          ? new this._WebSocket(url, [SUBPROTOCOL])
          : this._initDict
            ? new /** @type {NodeWebSocketConstructor} */ (/** @type {unknown} */ (this._WebSocket))(url, { protocols: [SUBPROTOCOL], headers: this._headers })
            : new this._WebSocket(url, [SUBPROTOCOL], { headers: this._headers })
      );
    } catch (error) {
      if (this._closing) return;
      const fatal = !this._everOpen || error instanceof Unauthenticated || error instanceof TypeError || /** @type {Error} */ (error)?.name === "SyntaxError";
      if (fatal) {
        return this._giveUp(error instanceof StreamError ? error : new Unavailable(`Cannot connect to ${this.url}: ${/** @type {Error} */ (error)?.message ?? error}`));
      }
      return this._retry();
    }
    this._ws = ws;
    let greeted = false;
    this._noHello = setTimeout(() => this._drop(ws, CloseCode.ABNORMAL, false), this.openTimeout * 1000);
    // A close event follows an error, except in Node 20's built-in WebSocket
    // when the connection is refused: then the socket is given up here.
    ws.onerror = (event) => {
      // Node's `ws` package says what the server answered a refused handshake
      // ("Unexpected server response: 404"); a browser's WebSocket never does.
      const status = /Unexpected server response: (\d{3})/.exec(String(/** @type {any} */ (event)?.message ?? ""));
      if (status && !greeted) this._handshakeStatus = Number(status[1]);
      setTimeout(() => this._drop(ws, CloseCode.ABNORMAL, greeted), 50);
    };
    ws.onclose = (event) => {
      if (this._ws === ws) this._lost(event.code, greeted);
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._heartbeat?.seen();
      if (greeted) return this._receive(event.data);
      /** @type {HelloFrame | undefined} */
      let hello;
      try {
        hello = JSON.parse(/** @type {string} */ (event.data));
      } catch {}
      if (hello?.t !== "hello") return this._drop(ws, CloseCode.ABNORMAL, false);
      greeted = true;
      clearTimeout(this._noHello);
      this._greeted(ws, hello);
    };
  }

  /**
   * @param {Socket} ws
   * @param {HelloFrame} hello
   */
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

  /**
   * Forget a connection now (a dead one need not close politely) and handle it as closed with `code`.
   * @param {Socket} ws
   * @param {number} code
   * @param {boolean} greeted
   */
  _drop(ws, code, greeted) {
    if (this._ws !== ws) return;
    this._ws = null;
    try {
      if (typeof ws.terminate === "function") ws.terminate();
      else ws.close(code >= 4000 ? code : 1000);
    } catch {}
    this._lost(code, greeted);
  }

  /**
   * @param {number} code
   * @param {boolean} greeted
   */
  _lost(code, greeted) {
    this._ws = null;
    clearTimeout(this._noHello);
    this._stopHeartbeat();
    this.closeCode = code;
    if (this._closing) return;
    if (!greeted && code === CloseCode.INVALID_CREDENTIALS) {
      return this._giveUp(new Unauthenticated("The server refused the credentials (close code 4401).", { close_code: code }));
    }
    const error = greeted || code !== CloseCode.ABNORMAL
      ? new Unavailable(`The connection was closed (code ${code}).`, { close_code: code })
      : handshakeFailure(this.url, this._handshakeStatus);
    this._handshakeStatus = undefined;
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
    const delay = reconnectDelay(this._attempt, this.reconnectInitial, this.reconnectMax);
    this._attempt += 1;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = undefined;
      if (!this._closing) this._connect();
    }, delay * 1000);
  }

  /** @param {Error} error */
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
      this.closeCode = CloseCode.NORMAL;
      this._giveUp(new Unavailable("The client was closed.", { close_code: CloseCode.NORMAL }));
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
        ws.close(CloseCode.NORMAL);
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
   * @param {Socket} ws
   * @param {HelloFrame} hello
   */
  _startHeartbeat(ws, hello) {
    const seconds = this.heartbeat === undefined ? Number(hello.heartbeat) : this.heartbeat;
    if (!seconds || seconds <= 0) return;
    this._heartbeat = new Heartbeat(seconds, {
      ping: (n) => {
        if (this._ws === ws) this._sendFrame({ t: "ping", d: n });
      },
      dead: () => this._drop(ws, CloseCode.HEARTBEAT_TIMEOUT, true),
    });
  }

  _stopHeartbeat() {
    this._heartbeat?.stop();
    this._heartbeat = null;
  }

  // -- calls ---------------------------------------------------------------------------------

  /**
   * A unary call: its result, or the `StreamError` it failed with. With
   * `retryThrottled`, a throttled call is sent again after the server's
   * `retryAfter`, within the option's bounds; `timeout` covers every attempt.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {CallOptions} [options]
   * @returns {Promise<any>}
   */
  call(method, args, options = {}) {
    if (this.retryThrottled) return this._callRetrying(this.retryThrottled, method, args, options);
    return this._unary(method, args, options);
  }

  /**
   * One attempt of a unary call; its frame is queued before this returns, so calls keep their order.
   * @param {string} method
   * @param {Record<string, any> | undefined} args
   * @param {CallOptions} options
   * @returns {Promise<any>}
   */
  _unary(method, args, options) {
    const call = new Call(this, this._channel, "unary", method, args, options);
    call._start();
    return call.result();
  }

  /**
   * A unary call sent again after each throttled refusal `policy` accepts to wait out.
   * @param {import("./pushback.js").RetryThrottled} policy
   * @param {string} method
   * @param {Record<string, any> | undefined} args
   * @param {CallOptions} options
   * @returns {Promise<any>}
   */
  async _callRetrying(policy, method, args, options) {
    const deadline = options.timeout != null ? clock() + options.timeout * 1000 : null;
    const secondsLeft = () => (deadline === null ? null : (deadline - clock()) / 1000);
    let attempt = options;
    for (let retried = 0, waited = 0; ; retried++) {
      try {
        return await this._unary(method, args, attempt);
      } catch (error) {
        const delay = throttledDelay(policy, error, { retried, waited, timeLeft: secondsLeft() });
        if (delay === null) throw error;
        await pause(delay, options.signal);
        waited += delay;
        const left = secondsLeft();
        if (left !== null && left <= 0) throw error;
        if (left !== null) attempt = { ...options, timeout: left };
      }
    }
  }

  /**
   * A server stream: `for await (const item of client.stream(...))`; `.result` after the loop.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {StreamOptions} [options]
   * @returns {Stream}
   */
  stream(method, args, options = {}) {
    return new Stream(this, this._channel, method, args, options);
  }

  /**
   * A client-stream or bidirectional call, once its call frame is sent: `send()`, `end()`,
   * `for await` over the server's items, `result()`.
   * @param {string} method
   * @param {Record<string, any>} [args]
   * @param {OpenOptions} [options]
   * @returns {Promise<Call>}
   */
  async open(method, args, options = {}) {
    const call = new Call(this, this._channel, "open", method, args, options);
    await call._start();
    return call;
  }

  // -- the calls' channel ----------------------------------------------------------------

  /** @param {BaseCall} call */
  _enqueue(call) {
    if (this.state === "open" && this._ws) this._issue(call);
    else if (this.state === "closed") call._terminate(new Unavailable("The client is not connected.", { close_code: this.closeCode }));
    else this._pending.add(call);
  }

  /** @param {BaseCall} call */
  _issue(call) {
    if (call._issue(++this._lastId, this.clientWindow)) this._calls.set(/** @type {number} */ (call.id), call);
  }

  /** @param {BaseCall} call */
  _forget(call) {
    if (call.id !== null && this._calls.get(call.id) === call) this._calls.delete(call.id);
    this._pending.delete(call);
  }

  /**
   * Send one frame; with `required`, throw `Unavailable` when there is no open
   * connection and `ResourceExhausted` for a frame over `limits.max_frame`.
   * @param {ClientFrame} frame
   * @param {boolean} [required]
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

  /** @param {unknown} data a message of the connection, after `hello` */
  _receive(data) {
    if (typeof data !== "string") return; // binary messages are not part of the JSON subprotocol
    /** @type {any} */
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

/**
 * The error of a WebSocket that closed before the server's hello (1006): the
 * handshake failed. The usual cause is the server's wiring, which
 * `python manage.py check` reports, so the message says where to look.
 * @param {string} url
 * @param {number | undefined} status the handshake's HTTP status, when the WebSocket implementation tells it
 * @returns {Unavailable}
 */
export function handshakeFailure(url, status) {
  const answered = status ? ` (the server answered HTTP ${status})` : "";
  let hint;
  if (status === 404 || status === undefined) {
    hint = "If the server answers the handshake with HTTP 404, nothing routes this path to streaming_app's StreamConsumer: " +
      "check the URL, the 'websocket' route of ASGI_APPLICATION, and that an ASGI server runs it ('daphne' first in INSTALLED_APPS for runserver). " +
      "`python manage.py check` names the missing piece.";
  } else if (status >= 500) {
    hint = "The server failed on the handshake. Usually no websocket route matches this path (Channels: \"No route found for path\") " +
      "or ASGI_APPLICATION routes no 'websocket' at all: the server's log has the traceback, and `python manage.py check` names the missing piece.";
  } else if (status === 403) {
    hint = "The server refused the handshake: an Origin not allowed (ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS) or a refused ticket.";
  } else {
    hint = "The WebSocket handshake did not succeed.";
  }
  /** @type {Record<string, unknown>} */
  const details = { close_code: CloseCode.ABNORMAL };
  if (status) details.http_status = status;
  return new Unavailable(`Cannot open a WebSocket to ${url}${answered}. ${hint}`, details);
}
