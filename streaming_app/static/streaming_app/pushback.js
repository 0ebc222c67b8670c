/**
 * The server's throttling hints (what gRPC calls server pushback): the
 * `Retry-After` header of an HTTP answer, and the opt-in retry of throttled
 * unary calls. The twin of `streaming_app/client/pushback.py`.
 *
 * A throttled call fails with `ResourceExhausted` whose `retryAfter` (from
 * `details.retry_after`) says how many seconds to wait. The client never
 * retries by itself unless asked (`retryThrottled`): a retry runs the call
 * again later, and only the caller knows whether it wants that rather than the
 * error now.
 * @module
 */

import { ResourceExhausted } from "./errors.js";

/** @typedef {import("./client.js").RetryThrottledOptions} RetryThrottledOptions */

/** The bounds of the retry, once defaults are filled in. @typedef {{retries: number, maxWait: number}} RetryThrottled */

/**
 * The seconds of an HTTP `Retry-After` header, or `null` when absent or
 * malformed. RFC 9110 allows whole seconds or an HTTP-date; a date in the past is 0.
 * @param {string | null | undefined} value
 * @param {number} [now] milliseconds since the epoch
 * @returns {number | null}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return null;
  const seconds = /^\s*([0-9]+)\s*$/.exec(value);
  if (seconds) return Number(seconds[1]);
  if (!/[A-Za-z]/.test(value)) return null; // Date.parse reads bare numbers as years
  const when = Date.parse(value);
  if (Number.isNaN(when)) return null;
  return Math.max(0, (when - now) / 1000);
}

/**
 * The `retryThrottled` option with its defaults (3 retries, 30 s of waiting
 * in all), or `null` when off; refuses bounds that are not numbers ≥ 0.
 * @param {RetryThrottledOptions | null | undefined} options
 * @returns {RetryThrottled | null}
 */
export function retryThrottledPolicy(options) {
  if (options == null) return null;
  const retries = options.retries ?? 3;
  const maxWait = options.maxWait ?? 30;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`retryThrottled.retries must be a whole number ≥ 0, got ${retries}`);
  if (typeof maxWait !== "number" || !(maxWait >= 0)) throw new RangeError(`retryThrottled.maxWait must be seconds ≥ 0, got ${maxWait}`);
  return { retries, maxWait };
}

/**
 * Seconds to wait before trying a throttled call again, or `null` to fail
 * with `error`: only `ResourceExhausted` with a `retryAfter`, at most
 * `retries` times, while the waits add up to no more than `maxWait` and end
 * before the call's deadline (`timeLeft`, seconds, `null`: none).
 * @param {RetryThrottled} policy
 * @param {unknown} error
 * @param {{retried: number, waited: number, timeLeft: number | null}} progress retries made, seconds waited, seconds left
 * @returns {number | null}
 */
export function throttledDelay(policy, error, { retried, waited, timeLeft }) {
  if (!(error instanceof ResourceExhausted) || retried >= policy.retries) return null;
  const wait = error.retryAfter;
  if (wait === null || waited + wait > policy.maxWait) return null;
  if (timeLeft !== null && wait >= timeLeft) return null;
  return wait;
}

/**
 * Resolves after `seconds`; rejects with the signal's reason if it is aborted first.
 * @param {number} seconds
 * @param {AbortSignal | null | undefined} signal
 * @returns {Promise<void>}
 */
export function pause(seconds, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, seconds * 1000);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
