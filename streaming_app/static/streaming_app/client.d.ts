/**
 * Types of client.js, the streaming_app client for browsers and Node.
 * The wire protocol is docs/protocol.md of the repository.
 */

/** The WebSocket subprotocol of protocol v1. */
export declare const SUBPROTOCOL: "streaming.v1.json";

/** Close codes after which the client reconnects: 1006, 1011, 4408, 4429, 4500, 4503. */
export declare const RECONNECT_CLOSE_CODES: readonly number[];

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/**
 * Where a call is: `new` (not started; a stream starts on its first `next()`),
 * `waiting` for a connection, `resuming` (sent with `resume`, waiting for
 * `ready`), `running`, `half_closed` (the client half has ended), `ended` (the
 * server sends nothing more; unread items are still handed out), `done` (the
 * caller has seen the end, or stopped the call).
 */
export type CallState = "new" | "waiting" | "resuming" | "running" | "half_closed" | "ended" | "done";

/** gRPC's canonical codes in snake case. */
export type ErrorCode =
  | "cancelled"
  | "unknown"
  | "invalid_argument"
  | "deadline_exceeded"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "data_loss"
  | "unauthenticated";

/** Arguments of a call, by name. */
export type Args = Record<string, unknown>;

/** The server's first frame on every connection. */
export interface Hello {
  t: "hello";
  v: number;
  conn: string;
  /** The server's ping interval in seconds. */
  heartbeat: number;
  limits: { max_frame: number; max_calls: number; client_window: number };
}

/** The first frame of a resumable stream. */
export interface Ready {
  t: "ready";
  id: number;
  eid: string;
  /** Present only when the call carried `resume`. */
  recovered?: boolean;
}

/**
 * What the client needs of a WebSocket: the WHATWG API (`readyState`, `send`,
 * `close`, and the `onmessage`/`onclose`/`onerror` handler properties it
 * sets), as browsers, Node and the `ws` package have it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket class: the global one, or e.g. the `ws` package's (which also takes `{headers}`). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }): WebSocketLike;
}

export interface StreamClientOptions {
  /** The WebSocket class; default the global `WebSocket` (Node's takes `token` and `headers`; a browser's does not). */
  WebSocket?: WebSocketConstructor;
  /** A DRF token sent as `Authorization: Bearer <token>` (Node's built-in WebSocket, or one that accepts headers). */
  token?: string;
  /** Extra handshake headers, e.g. `Cookie` in Node (Node's built-in WebSocket, or one that accepts headers). */
  headers?: Record<string, string>;
  /** A ticket, or a function returning a fresh one for every connection (tickets are single-use); see `ticketFetcher`. */
  ticket?: string | (() => string | Promise<string>);
  /** Default credit window of streams and bidirectional calls; `null`: unbounded. Default 64. */
  window?: number | null;
  /** Reconnect after reconnectable closes. Default true. */
  reconnect?: boolean;
  /** First backoff ceiling in seconds, doubled per attempt. Default 0.1. */
  reconnectInitial?: number;
  /** Largest backoff ceiling in seconds. Default 10. */
  reconnectMax?: number;
  /** Seconds to wait for `hello` after opening the socket. Default 10. */
  openTimeout?: number;
  /** Heartbeat interval in seconds instead of the server's `hello.heartbeat`; `false` or 0 turns heartbeats off. */
  heartbeat?: number | false;
  /** Called on every change of `state` (including the first, `"connecting"`). */
  onStateChange?: (state: ConnectionState, client: StreamClient) => void;
  /** Retry throttled unary calls after the server's `retryAfter` (`{}`: the defaults). Default: off. */
  retryThrottled?: RetryThrottledOptions | null;
}

/**
 * The bounds of `retryThrottled`: a unary call refused with `ResourceExhausted`
 * and a `retryAfter` is sent again after that many seconds, at most `retries`
 * times, while the waits add up to no more than `maxWait` seconds and end
 * before the call's `timeout`; a hint that does not fit fails the call at once.
 */
export interface RetryThrottledOptions {
  /** Attempts after the first. Default 3. */
  retries?: number;
  /** Seconds of waiting in all, over every retry. Default 30. */
  maxWait?: number;
}

export interface CallOptions {
  /** Deadline in seconds, counted from this call. */
  timeout?: number;
  /** Aborting it cancels the call on the server; the call rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface OpenOptions extends CallOptions {
  /** Credit window of the server's items; `null`: unbounded. Default: the client's. */
  window?: number | null;
}

export interface StreamOptions extends OpenOptions {
  /** An event id to resume a resumable stream from. */
  resume?: string;
}

export interface StateChangeDetail {
  state: ConnectionState;
  previous: ConnectionState;
  closeCode: number | null;
}

export declare class StreamError extends Error {
  /** The code of this class. */
  static readonly code: ErrorCode;
  static readonly defaultMessage: string;
  readonly code: ErrorCode;
  details: Record<string, any>;
  /**
   * Seconds the server asks to wait before trying again (`details.retry_after`, which a
   * throttled call carries; over HTTP from `Retry-After` when the body has none), or `null`.
   */
  readonly retryAfter: number | null;
  constructor(message?: string, details?: Record<string, any>);
  /** The error of a wire code; an unknown code gives `Unknown` with `details.code`. */
  static forCode(code: string, message?: string, details?: Record<string, any>): StreamError;
}
export declare class Cancelled extends StreamError {}
export declare class Unknown extends StreamError {}
export declare class InvalidArgument extends StreamError {}
export declare class DeadlineExceeded extends StreamError {}
export declare class NotFound extends StreamError {}
export declare class AlreadyExists extends StreamError {}
export declare class PermissionDenied extends StreamError {}
export declare class ResourceExhausted extends StreamError {}
export declare class FailedPrecondition extends StreamError {}
export declare class Aborted extends StreamError {}
export declare class OutOfRange extends StreamError {}
export declare class Unimplemented extends StreamError {}
export declare class Internal extends StreamError {}
export declare class Unavailable extends StreamError {}
export declare class DataLoss extends StreamError {}
export declare class Unauthenticated extends StreamError {}
/**
 * `ready` with `recovered: false`: the history no longer reaches the resume
 * point; reload the state and open the stream again. Code `data_loss`;
 * `details.resume` is the id asked for, `details.eid` the server's position.
 */
export declare class StateLost extends DataLoss {}

/** The error class of each protocol code. */
export declare const ERROR_CLASSES: Readonly<Record<ErrorCode, typeof StreamError>>;

/**
 * A call in flight: what `client.open()` resolves to (client-stream and
 * bidirectional calls). `Item` is what the server sends, `Result` the end's
 * value, `Sent` what the caller sends.
 */
export declare class Call<Item = any, Result = any, Sent = any> implements AsyncIterable<Item> {
  readonly client: StreamClient;
  readonly method: string;
  readonly args: Args;
  /** The call id on the current connection; `null` until the call frame is sent. */
  readonly id: number | null;
  readonly window: number | null;
  /** Event id of the last item handed to the caller, or of `ready` (resumable streams). */
  readonly lastEventId: string | null;
  readonly ready: Ready | null;
  /** Where the call is; it only moves along the transitions of `CallState`. */
  readonly state: CallState;
  /** Send one item, waiting while the server has granted no credit. */
  send(item: Sent): Promise<void>;
  /** Half-close: no more items from this side. */
  end(): Promise<void>;
  /** Wait for the end; resolves with its value (`null` if none). Unread items are discarded. */
  result(): Promise<Result>;
  /** Stop the call on the server; nothing more is received. */
  cancel(): void;
  /** The server's items; leaving the loop early cancels the call. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Item>;
}

/** A server stream: `for await (const item of stream)`, then `stream.result`. */
export declare class Stream<Item = any, Result = any> implements AsyncIterableIterator<Item> {
  readonly client: StreamClient;
  readonly method: string;
  readonly args: Args;
  readonly id: number | null;
  readonly window: number | null;
  /** Event id of the last item handed to the caller, or of `ready`; pass it as `resume` to continue later. */
  readonly lastEventId: string | null;
  readonly ready: Ready | null;
  /** Where the call is; it only moves along the transitions of `CallState`. */
  readonly state: CallState;
  /** The stream's return value, once iteration has finished (`undefined` if cancelled); throws before. */
  readonly result: Result | undefined;
  next(): Promise<IteratorResult<Item, undefined>>;
  /** Stop iterating; cancels the call on the server if it still runs. */
  return(value?: any): Promise<IteratorResult<Item, any>>;
  throw(error?: any): Promise<IteratorResult<Item, any>>;
  /** Stop the call on the server; nothing more is received. */
  cancel(): void;
  [Symbol.asyncIterator](): this;
}

/**
 * One multiplexed connection to a streaming_app server; connects at once.
 * Events: `statechange` (`CustomEvent<StateChangeDetail>`), `error`
 * (`CustomEvent<StreamError>` for an error frame that belongs to no call).
 */
export declare class StreamClient extends EventTarget {
  constructor(url: string | URL, options?: StreamClientOptions);
  readonly url: string;
  readonly state: ConnectionState;
  /** The `hello` of the current (or last) connection. */
  readonly hello: Hello | null;
  /** Items a call may send before the server grants credit. */
  readonly clientWindow: number;
  /** The close code of the last connection. */
  readonly closeCode: number | null;
  /** Resolves with `hello` once connected; rejects (`Unavailable`, `Unauthenticated`) if the client closes first. */
  readonly ready: Promise<Hello>;
  window: number | null;
  reconnect: boolean;
  reconnectInitial: number;
  reconnectMax: number;
  /** How `call()` retries throttled calls (the option with its defaults), or `null`: it does not. */
  retryThrottled: { retries: number; maxWait: number } | null;
  /** Call `callback` on every change of `state`; returns a function that unsubscribes. */
  onStateChange(callback: (state: ConnectionState, client: StreamClient) => void): () => void;
  /** A unary call: its result, or the `StreamError` it failed with (retried when throttled with `retryThrottled`). */
  call<Result = any>(method: string, args?: Args, options?: CallOptions): Promise<Result>;
  /** A server stream; the call starts on the first `next()`. */
  stream<Item = any, Result = any>(method: string, args?: Args, options?: StreamOptions): Stream<Item, Result>;
  /** A client-stream or bidirectional call, once its call frame is sent. */
  open<Item = any, Result = any, Sent = any>(method: string, args?: Args, options?: OpenOptions): Promise<Call<Item, Result, Sent>>;
  /** Close the connection; open calls fail with `Unavailable`. Resolves once the socket is closed. */
  close(): Promise<void>;
  addEventListener(type: "statechange", listener: (event: CustomEvent<StateChangeDetail>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: "error", listener: (event: CustomEvent<StreamError>) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}

export interface TicketFetcherOptions {
  fetch?: typeof fetch;
  /** The CSRF token; default the `csrftoken` cookie of the page, for an endpoint of the page's origin. */
  csrfToken?: string;
  headers?: Record<string, string>;
  credentials?: RequestCredentials;
}

/** A `ticket` option for browsers: POSTs to the ticket endpoint (default `/streams/_ticket`) for each connection. */
export declare function ticketFetcher(url?: string, options?: TicketFetcherOptions): () => Promise<string>;

/** The typed error of a non-2xx HTTP response (`{"error": {...}}` body, or its status). */
export declare function httpError(response: Response): Promise<StreamError>;

export interface SseEvent {
  /** The event type; `"message"` when the event had none. */
  event: string;
  data: string;
  /** The last event id so far (`""` if none). */
  id: string;
}

/** An incremental `text/event-stream` parser (WHATWG rules). */
export declare class SseParser {
  /** The last `id:` seen (`""` if none). */
  readonly lastEventId: string;
  /** The last `retry:` in milliseconds, or `null`. */
  readonly retry: number | null;
  /** How many comment lines (keepalives) were seen. */
  readonly comments: number;
  /** Feed a chunk; returns the events it completed. */
  push(chunk: Uint8Array | string): SseEvent[];
  /** The end of the body: an event not terminated by a blank line is dropped. */
  end(): SseEvent[];
}

export interface SseOptions {
  /** `"POST"` (arguments as a JSON body; default) or `"GET"` (arguments as query parameters). */
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  /** A DRF token sent as `Authorization: Bearer <token>`. */
  token?: string;
  signal?: AbortSignal;
  /** Seconds before the stream fails with `DeadlineExceeded` (enforced by the client). */
  timeout?: number;
  /** Resume after this event id (`Last-Event-ID`). */
  lastEventId?: string;
  /** The CSRF token for session-authenticated POSTs; default the page's `csrftoken` cookie, for URLs of the page's origin. */
  csrfToken?: string;
  credentials?: RequestCredentials;
  fetch?: typeof fetch;
}

/** A server stream over HTTP as Server-Sent Events, read with `fetch`. */
export declare class SseStream<Item = any, Result = any> implements AsyncIterableIterator<Item> {
  constructor(url: string | URL, args?: Args, options?: SseOptions);
  readonly url: string | URL;
  readonly args: Args;
  /** The id of the last event handed to the caller, or `null`. */
  readonly lastEventId: string | null;
  /** The data of the `ready` event of a resumable stream. */
  readonly ready: { eid: string; recovered?: boolean } | null;
  /** The `end` event's data, once iteration has finished. */
  readonly result: Result | undefined;
  next(): Promise<IteratorResult<Item, undefined>>;
  return(value?: any): Promise<IteratorResult<Item, any>>;
  throw(error?: any): Promise<IteratorResult<Item, any>>;
  [Symbol.asyncIterator](): this;
}

/** `new SseStream(url, args, options)`. */
export declare function sseStream<Item = any, Result = any>(url: string | URL, args?: Args, options?: SseOptions): SseStream<Item, Result>;

/** A member of a topic's presence: one call; `user` is null for an anonymous member. */
export interface PresenceMember<Info = unknown> {
  client: string;
  user: string | null;
  info: Info | null;
}

/** A join or a leave, as `ctx.presence_events(topic)` relays it (`info` on joins, `clients`: the user's clients after it). */
export interface PresenceEvent<Info = unknown> {
  presence: "join" | "leave";
  client: string;
  user: string | null;
  info?: Info | null;
  clients?: number;
}

/** `ctx.presence_stats(topic)`: every client, distinct signed-in users, anonymous clients. */
export interface PresenceStats {
  clients: number;
  users: number;
  anonymous: number;
}

/** Whether a stream item is a presence event (`Info`: what its joins carry, as the view chose). */
export declare function isPresenceEvent<Info = unknown>(item: unknown): item is PresenceEvent<Info>;

/** A room's member list, kept from a presence read and the join and leave events that follow. */
export declare class Roster<Info = unknown> {
  constructor(members?: Iterable<PresenceMember<Info>>);
  readonly members: Map<string, PresenceMember<Info>>;
  /** Apply a join or a leave; true when the list changed. */
  apply(event: PresenceEvent<Info>): boolean;
  readonly size: number;
  /** Clients per signed-in user; anonymous clients under `null`. */
  byUser(): Map<string | null, number>;
  stats(): PresenceStats;
}
