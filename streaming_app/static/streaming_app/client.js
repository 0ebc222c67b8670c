/**
 * The JavaScript client of streaming_app: protocol v1 over one WebSocket, for
 * browsers and Node, with no dependencies and no build step. This module is
 * the entry point; it re-exports the public API of the modules beside it:
 *
 * - `connection.js`: `StreamClient`, one multiplexed connection (reconnection, heartbeats);
 * - `call.js`: `Call` and `Stream`, one call in flight and its state machine;
 * - `errors.js`: `StreamError` and a class per error code; `codes.js`: the protocol's codes;
 * - `sse.js`: server streams over HTTP (Server-Sent Events through `fetch`);
 * - `http.js`: typed errors of HTTP responses, `ticketFetcher`;
 * - `presence.js`: `Roster`, a room's member list kept from presence events;
 * - `pushback.js`: the server's throttling hints (`Retry-After`, the opt-in retry of throttled calls);
 * - `timers.js`, `page.js`, `deferred.js`, `frames.js`: what those rest on.
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
 * resumable streams. `sseStream()` reads a server stream over HTTP with the
 * same iteration surface. `client.d.ts` declares the public API.
 *
 * The wire protocol is docs/protocol.md of the repository.
 * @module
 */

export { SUBPROTOCOL, RECONNECT_CLOSE_CODES } from "./codes.js";
export {
  StreamError,
  Cancelled,
  Unknown,
  InvalidArgument,
  DeadlineExceeded,
  NotFound,
  AlreadyExists,
  PermissionDenied,
  ResourceExhausted,
  FailedPrecondition,
  Aborted,
  OutOfRange,
  Unimplemented,
  Internal,
  Unavailable,
  DataLoss,
  Unauthenticated,
  StateLost,
  ERROR_CLASSES,
} from "./errors.js";
export { Call, Stream } from "./call.js";
export { StreamClient } from "./connection.js";
export { ticketFetcher, httpError } from "./http.js";
export { SseParser, SseStream, sseStream } from "./sse.js";
export { Roster, isPresenceEvent } from "./presence.js";
