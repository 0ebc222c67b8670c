/**
 * Errors as data: one class per protocol error code, as in
 * `streaming_app/exceptions.py`, with the same default messages
 * (`tests/e2e/test_js_client.py` checks them against Python's).
 * @module
 */

/** @typedef {import("./codes.js").ErrorCode} ErrorCode */

/**
 * Base class of every error a call can end with. `code` is the protocol's
 * error code, `details` its machine-readable details (`{}` when none).
 */
export class StreamError extends Error {
  /** @type {ErrorCode} */ static code = "unknown";
  static defaultMessage = "Unknown error.";

  /**
   * @param {string} [message]
   * @param {Record<string, any>} [details]
   */
  constructor(message, details) {
    super(message ?? new.target.defaultMessage);
    this.name = new.target.name;
    /** @type {ErrorCode} */
    this.code = new.target.code;
    /** @type {Record<string, any>} */
    this.details = details ?? {};
  }

  /**
   * Seconds the server asks the caller to wait before trying again, or `null`
   * if it gave no hint: `details.retry_after`, which a throttled call carries
   * (`resource_exhausted`; over HTTP `httpError` fills it from `Retry-After`
   * when the body lacks it). Anything but a finite number ≥ 0 is no hint.
   * @returns {number | null}
   */
  get retryAfter() {
    const value = this.details.retry_after;
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : null;
  }

  /**
   * The error of a wire code; an unknown code gives `Unknown` keeping the code in `details.code`.
   * @param {string} code
   * @param {string} [message]
   * @param {Record<string, any>} [details]
   * @returns {StreamError}
   */
  static forCode(code, message, details) {
    const cls = /** @type {Record<string, typeof StreamError | undefined>} */ (ERROR_CLASSES)[code];
    if (cls === undefined) return new Unknown(message, { ...details, code });
    return new cls(message, details);
  }
}

export class Cancelled extends StreamError {
  /** @type {ErrorCode} */ static code = "cancelled";
  static defaultMessage = "The call was cancelled.";
}
export class Unknown extends StreamError {
  /** @type {ErrorCode} */ static code = "unknown";
  static defaultMessage = "Unknown error.";
}
export class InvalidArgument extends StreamError {
  /** @type {ErrorCode} */ static code = "invalid_argument";
  static defaultMessage = "Invalid argument.";
}
export class DeadlineExceeded extends StreamError {
  /** @type {ErrorCode} */ static code = "deadline_exceeded";
  static defaultMessage = "The deadline was exceeded.";
}
export class NotFound extends StreamError {
  /** @type {ErrorCode} */ static code = "not_found";
  static defaultMessage = "Not found.";
}
export class AlreadyExists extends StreamError {
  /** @type {ErrorCode} */ static code = "already_exists";
  static defaultMessage = "Already exists.";
}
export class PermissionDenied extends StreamError {
  /** @type {ErrorCode} */ static code = "permission_denied";
  static defaultMessage = "You do not have permission to perform this action.";
}
export class ResourceExhausted extends StreamError {
  /** @type {ErrorCode} */ static code = "resource_exhausted";
  static defaultMessage = "A resource limit was reached.";
}
export class FailedPrecondition extends StreamError {
  /** @type {ErrorCode} */ static code = "failed_precondition";
  static defaultMessage = "The system is not in a state required for this call.";
}
export class Aborted extends StreamError {
  /** @type {ErrorCode} */ static code = "aborted";
  static defaultMessage = "The call was aborted.";
}
export class OutOfRange extends StreamError {
  /** @type {ErrorCode} */ static code = "out_of_range";
  static defaultMessage = "Out of range.";
}
export class Unimplemented extends StreamError {
  /** @type {ErrorCode} */ static code = "unimplemented";
  static defaultMessage = "This method is not implemented.";
}
export class Internal extends StreamError {
  /** @type {ErrorCode} */ static code = "internal";
  static defaultMessage = "Internal error.";
}
export class Unavailable extends StreamError {
  /** @type {ErrorCode} */ static code = "unavailable";
  static defaultMessage = "The service is unavailable.";
}
export class DataLoss extends StreamError {
  /** @type {ErrorCode} */ static code = "data_loss";
  static defaultMessage = "Data was lost.";
}
export class Unauthenticated extends StreamError {
  /** @type {ErrorCode} */ static code = "unauthenticated";
  static defaultMessage = "Authentication credentials were not provided.";
}

/**
 * A resumable stream could not be resumed: the server's history no longer
 * reaches back to the last event the caller saw (`ready` with
 * `recovered: false`). Nothing was replayed; reload your state, then open the
 * stream again. `details.resume` is the event id that was asked for,
 * `details.eid` the server's current position. (`StateLost` of
 * `streaming_app.client` in Python.)
 */
export class StateLost extends DataLoss {
  static defaultMessage = "The stream's history no longer reaches the resume point; reload the state.";
}

/**
 * The error class of each of the 16 protocol codes.
 * @type {Readonly<Record<ErrorCode, typeof StreamError>>}
 */
export const ERROR_CLASSES = Object.freeze(
  /** @type {Record<ErrorCode, typeof StreamError>} */ (
    Object.fromEntries(
      [
        Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
        PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
        Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated,
      ].map((cls) => [cls.code, cls]),
    )
  ),
);

/**
 * The error of a body `{code, message, details}`, as `error` frames, SSE
 * `error` events and HTTP error bodies carry it; anything missing or of the
 * wrong type falls back (`unknown`, the default message, `{}`).
 * @param {unknown} body
 * @returns {StreamError}
 */
export function errorFromBody(body) {
  const fields = /** @type {{code?: unknown, message?: unknown, details?: unknown} | null | undefined} */ (body);
  const code = typeof fields?.code === "string" ? fields.code : "unknown";
  const details = fields?.details && typeof fields.details === "object" ? /** @type {Record<string, any>} */ (fields.details) : {};
  return StreamError.forCode(code, typeof fields?.message === "string" ? fields.message : undefined, details);
}
