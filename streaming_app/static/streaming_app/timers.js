/**
 * The client's clocks: a monotonic clock, reconnection backoff with full
 * jitter, and the heartbeat that finds a dead connection.
 * @module
 */

/** Milliseconds from a monotonic clock when there is one. */
export const clock = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

/**
 * A timer that does not keep Node's event loop alive (a no-op in browsers).
 * @template T
 * @param {T} timer
 * @returns {T}
 */
export function unref(timer) {
  const handle = /** @type {{unref?: unknown}} */ (timer);
  if (handle && typeof handle.unref === "function") handle.unref();
  return timer;
}

/**
 * Seconds to wait before reconnection attempt `attempt` (0 for the first):
 * exponential backoff with full jitter, a random delay up to a ceiling that
 * doubles per attempt, so clients do not reconnect as a herd after a restart.
 * @param {number} attempt
 * @param {number} initial the first ceiling, in seconds
 * @param {number} max the largest ceiling, in seconds
 * @param {() => number} [random] a number in [0, 1)
 * @returns {number}
 */
export function reconnectDelay(attempt, initial, max, random = Math.random) {
  return random() * Math.min(max, initial * 2 ** attempt);
}

/**
 * Pings after `seconds` of silence; after twice that with nothing heard the
 * connection is dead. Whoever receives calls `seen()` for every message.
 */
export class Heartbeat {
  /**
   * @param {number} seconds
   * @param {{ping: (n: number) => void, dead: () => void}} hooks
   */
  constructor(seconds, hooks) {
    const interval = seconds * 1000;
    /** When something was last heard (`clock()`). */
    this.lastSeen = clock();
    /** When the last ping was sent (0: none yet). */
    this.lastPing = 0;
    let pings = 0;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this._timer = unref(
      setInterval(() => {
        const silent = clock() - this.lastSeen;
        if (silent >= 2 * interval) return hooks.dead();
        if (silent >= interval && this.lastPing <= this.lastSeen) {
          this.lastPing = clock();
          hooks.ping(++pings);
        }
      }, Math.max(10, interval / 4)),
    );
  }

  /** Something arrived from the server. */
  seen() {
    this.lastSeen = clock();
  }

  stop() {
    clearInterval(this._timer);
    this._timer = undefined;
  }
}
