/**
 * Server streams over HTTP as Server-Sent Events, read with `fetch`: an
 * incremental `text/event-stream` parser and the stream built on it.
 * @module
 */

import { Cancelled, DeadlineExceeded, Internal, StateLost, StreamError, Unavailable, Unknown, errorFromBody } from "./errors.js";
import { httpError } from "./http.js";
import { pageCsrfToken, resolvePageUrl } from "./page.js";

/** @typedef {import("./client.js").SseOptions} SseOptions */
/** @typedef {import("./client.js").SseEvent} SseEvent */

/** @type {IteratorReturnResult<undefined>} */
const DONE = Object.freeze({ value: undefined, done: true });

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
    /** @type {string[]} */
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
   * @returns {SseEvent[]}
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
    /** @type {SseEvent[]} */
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

  /**
   * The end of the body: anything not yet dispatched is dropped, as the spec says.
   * @returns {SseEvent[]}
   */
  end() {
    this._decoder.decode();
    this._buffer = "";
    this._data = [];
    this._event = "";
    return [];
  }

  /**
   * @param {string} line
   * @param {SseEvent[]} events
   */
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
   * @param {SseOptions} [options]
   */
  constructor(url, args, options = {}) {
    /** @type {string | URL} */
    this.url = url;
    /** @type {Record<string, any>} */
    this.args = args ?? {};
    this.options = options;
    /** The id of the last event handed to the caller (resumable streams), or `null`. @type {string | null} */
    this.lastEventId = options.lastEventId ?? null;
    /** The `ready` event's data of a resumable stream. @type {{eid: string, recovered?: boolean} | null} */
    this.ready = null;
    /** @type {SseEvent[]} */
    this._events = [];
    this._parser = new SseParser();
    /** @type {ReadableStreamDefaultReader<Uint8Array> | null} */
    this._reader = null;
    this._controller = new AbortController();
    this._finished = false;
    /** @type {any} */
    this._result = undefined;
    this._timedOut = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this._timer = undefined;
    /** @type {(() => void) | null} */
    this._onAbort = null;
  }

  /** @returns {this} */
  [Symbol.asyncIterator]() {
    return this;
  }

  /** @returns {Promise<ReadableStreamDefaultReader<Uint8Array>>} */
  async _open() {
    const options = this.options;
    const method = (options.method ?? "POST").toUpperCase();
    /** @type {Record<string, string>} */
    const headers = { Accept: "text/event-stream", ...options.headers };
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let url = resolvePageUrl(this.url);
    /** @type {string | undefined} */
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
      const onAbort = () => this._controller.abort(signal.reason);
      this._onAbort = onAbort;
      signal.addEventListener("abort", onAbort, { once: true });
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
    if (response.body === null) throw new Unavailable("The HTTP stream failed: the response has no body.", { last_event_id: this.lastEventId });
    this._reader = response.body.getReader();
    return this._reader;
  }

  /** @returns {Promise<IteratorResult<any, undefined>>} */
  async next() {
    if (this._finished) return DONE;
    try {
      const reader = this._reader ?? (await this._open());
      for (;;) {
        const event = this._events.shift();
        if (event === undefined) {
          const { value, done } = await reader.read();
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

  /**
   * The error the caller sees for what interrupted the stream.
   * @param {unknown} error
   * @returns {unknown}
   */
  _translate(error) {
    if (this._timedOut) return new DeadlineExceeded();
    const signal = this.options.signal;
    if (signal?.aborted) return signal.reason;
    if (error instanceof StreamError) return error;
    if (error instanceof SyntaxError) return new Internal(`The server sent an event that is not JSON: ${error.message}`);
    const message = error instanceof Error ? error.message : String(error);
    return new Unavailable(`The HTTP stream failed: ${message}`, { last_event_id: this.lastEventId });
  }

  /** @param {boolean} abort whether to close the response */
  _finish(abort) {
    if (this._finished) return;
    this._finished = true;
    clearTimeout(this._timer);
    if (this._onAbort) this.options.signal?.removeEventListener("abort", this._onAbort);
    if (abort) this._controller.abort(new Cancelled());
  }

  /**
   * Stop reading: closes the response, which cancels the call on the server.
   * @param {any} [value]
   * @returns {Promise<IteratorResult<any, any>>}
   */
  async return(value) {
    const reader = this._reader;
    this._finish(true);
    if (reader) await reader.cancel().catch(() => {});
    return { value, done: true };
  }

  /**
   * @param {any} [error]
   * @returns {Promise<IteratorResult<any, any>>}
   */
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
 * @param {SseOptions} [options]
 * @returns {SseStream}
 */
export function sseStream(url, args, options) {
  return new SseStream(url, args, options);
}
