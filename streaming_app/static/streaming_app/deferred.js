/**
 * A promise settled from outside.
 * @module
 */

/**
 * @template T
 * @typedef {{promise: Promise<T>, resolve: (value: T) => void, reject: (reason?: unknown) => void}} Deferred
 */

/**
 * A promise with its resolve and reject; its rejection is never reported as unhandled.
 * @template T
 * @returns {Deferred<T>}
 */
export function deferred() {
  /** @type {(value: T) => void} */
  let resolve = () => {};
  /** @type {(reason?: unknown) => void} */
  let reject = () => {};
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  /** @type {Promise<T>} */ (promise).catch(() => {});
  return { promise, resolve, reject };
}
