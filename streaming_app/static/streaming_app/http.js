/**
 * The HTTP side of the client: typed errors of HTTP responses, and the
 * ticket endpoint that lets a browser authenticate a WebSocket to another origin.
 * @module
 */

import { HTTP_STATUS } from "./codes.js";
import { StreamError, errorFromBody } from "./errors.js";
import { pageCsrfToken } from "./page.js";
import { parseRetryAfter } from "./pushback.js";

/** @typedef {import("./client.js").TicketFetcherOptions} TicketFetcherOptions */

/** The code of each HTTP status the transport answers with (the inverse of `HTTP_STATUS`). */
const CODE_OF_STATUS = new Map(Object.entries(HTTP_STATUS).map(([code, status]) => [status, code]));

/**
 * The typed error of a non-2xx HTTP response: its JSON body
 * `{"error": {"code", "message", "details"}}`, or else the code of its status
 * (`details.status` set in both cases). A `Retry-After` header (a 429 from the
 * server's throttles, or from a proxy without a JSON body) becomes
 * `details.retry_after`, and so `error.retryAfter`, unless the body gave one.
 * @param {Response} response
 * @returns {Promise<StreamError>}
 */
export async function httpError(response) {
  /** @type {any} */
  let body;
  try {
    body = await response.json();
  } catch {}
  /** @type {StreamError} */
  let error;
  if (body && typeof body.error === "object" && body.error !== null) {
    error = errorFromBody(body.error);
    error.details = { ...error.details, status: response.status };
  } else {
    const code = CODE_OF_STATUS.get(response.status) ?? (response.status >= 500 ? "internal" : "unknown");
    error = StreamError.forCode(code, `HTTP ${response.status} ${response.statusText || ""}`.trim(), { status: response.status });
  }
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  if (error.retryAfter === null && retryAfter !== null) error.details = { ...error.details, retry_after: retryAfter };
  return error;
}

/**
 * A `ticket` option for browsers: a function that POSTs to the ticket
 * endpoint with the session cookie and CSRF token and returns a fresh
 * single-use ticket (asked anew for every connection, so reconnects work).
 *
 *     new StreamClient("wss://api.example.com/ws/", { ticket: ticketFetcher("/streams/_ticket") })
 *
 * @param {string} [url] the ticket endpoint, `/streams/_ticket` by default
 * @param {TicketFetcherOptions} [options]
 * @returns {() => Promise<string>}
 */
export function ticketFetcher(url = "/streams/_ticket", options = {}) {
  return async () => {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    const csrf = options.csrfToken ?? pageCsrfToken(url);
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json", ...options.headers };
    if (csrf) headers["X-CSRFToken"] = csrf;
    const response = await fetchImpl(url, { method: "POST", headers, credentials: options.credentials ?? "same-origin" });
    if (!response.ok) throw await httpError(response);
    return (await response.json()).ticket;
  };
}
