/**
 * The codes of protocol v1 as data: the subprotocol, the 16 error codes with
 * their HTTP statuses, and the WebSocket close codes.
 *
 * The JavaScript twin of `streaming_app/protocol/codes.py`;
 * `tests/e2e/test_js_client.py` checks that the two hold the same values.
 * @module
 */

/** The version of the wire protocol. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket subprotocol of protocol v1. */
export const SUBPROTOCOL = "streaming.v1.json";

/**
 * gRPC's canonical status codes, spelled in snake case on the wire.
 * @typedef {"cancelled" | "unknown" | "invalid_argument" | "deadline_exceeded" | "not_found"
 *   | "already_exists" | "permission_denied" | "resource_exhausted" | "failed_precondition"
 *   | "aborted" | "out_of_range" | "unimplemented" | "internal" | "unavailable" | "data_loss"
 *   | "unauthenticated"} ErrorCode
 */

/**
 * The HTTP status the HTTP transport answers with for a code; any code not
 * listed answers 500.
 * @type {Readonly<Partial<Record<ErrorCode, number>>>}
 */
export const HTTP_STATUS = Object.freeze({
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  resource_exhausted: 429,
  cancelled: 499,
  unimplemented: 501,
  unavailable: 503,
  deadline_exceeded: 504,
});

/** WebSocket close codes: daphne lets an application send 1000 and 3000–4999. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  /** Never sent; seen by clients when the TCP connection drops. */
  ABNORMAL: 1006,
  /** Never sent by streaming_app; a server may use it. */
  INTERNAL_ERROR_WS: 1011,
  TERMINATED: 4000,
  BAD_FRAMES: 4400,
  INVALID_CREDENTIALS: 4401,
  FORBIDDEN: 4403,
  HEARTBEAT_TIMEOUT: 4408,
  FRAME_TOO_LARGE: 4413,
  TOO_MANY_CONNECTIONS: 4429,
  INTERNAL_ERROR: 4500,
  DRAINING: 4503,
});

/**
 * Close codes after which the client reconnects; after any other it stays closed.
 * @type {readonly number[]}
 */
export const RECONNECT_CLOSE_CODES = Object.freeze([1006, 1011, 4408, 4429, 4500, 4503]);
