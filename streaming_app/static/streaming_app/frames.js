/**
 * The frames of protocol v1 as types (no code): what the client sends and
 * what it reads. The wire protocol is docs/protocol.md of the repository.
 * @module
 */

/**
 * Server → client frames of a call (`id` null: an error that belongs to no call).
 * @typedef {{t: "next", id: number, d: any, eid?: string}} NextFrame
 * @typedef {{t: "end", id: number, d?: any}} EndFrame
 * @typedef {{t: "error", id: number | null, code?: unknown, message?: unknown, details?: unknown}} ErrorFrame
 * @typedef {{t: "ready", id: number, eid: string, recovered?: boolean}} ReadyFrame
 * @typedef {{t: "credit", id: number, n: number}} CreditFrame
 * @typedef {NextFrame | EndFrame | ErrorFrame | ReadyFrame} CallFrame
 */

/**
 * The server's first frame on every connection.
 * @typedef {{t: "hello", v: number, conn: string, heartbeat: number,
 *   limits: {max_frame: number, max_calls: number, client_window: number}}} HelloFrame
 */

/**
 * Client → server frames.
 * @typedef {{t: "call", id: number, m: string, a?: Record<string, any>, credit?: number, timeout?: number, resume?: string}
 *   | {t: "next", id: number, d: any}
 *   | {t: "end" | "cancel", id: number}
 *   | {t: "credit", id: number, n: number}
 *   | {t: "ping" | "pong", d?: any}} ClientFrame
 */

export {};
