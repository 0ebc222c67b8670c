/**
 * Presence on the client: who is in a topic's room, kept from a server's presence
 * items (docs/presence.md).
 *
 * A stream method that relays presence (`ctx.presence_events(topic)` on the
 * server) sends join and leave events, `{presence: "join" | "leave", user,
 * client, ...}`; a read (`ctx.presence(topic)`) gives the members,
 * `[{client, user, info}]`. A `Roster` starts from such a read (or empty) and
 * applies each event, so a page can show the member list and its counts:
 *
 *     // "rooms.members" and "rooms.join": methods of your own returning
 *     // `await ctx.presence(topic)` and relaying `ctx.presence_events(topic)`.
 *     const roster = new Roster(await client.call("rooms.members", { room }));
 *     for await (const item of client.stream("rooms.join", { room })) {
 *       if (isPresenceEvent(item)) roster.apply(item);
 *     }
 *
 * A member is a client (one call); `user` is a username, or null for an
 * anonymous member, who is counted and never named.
 * @module
 */

/**
 * Whether a stream item is a presence event (a join or a leave).
 * @param {unknown} item
 * @returns {item is import("./client.js").PresenceEvent}
 */
export function isPresenceEvent(item) {
  if (typeof item !== "object" || item === null) return false;
  const presence = /** @type {{presence?: unknown, client?: unknown}} */ (item).presence;
  return (presence === "join" || presence === "leave") && typeof (/** @type {{client?: unknown}} */ (item).client) === "string";
}

/** The members of one room, by client id. */
export class Roster {
  /**
   * @param {Iterable<import("./client.js").PresenceMember>} [members] a presence read to start from
   */
  constructor(members = []) {
    /** @type {Map<string, import("./client.js").PresenceMember>} */
    this.members = new Map();
    for (const member of members) this.members.set(member.client, { ...member });
  }

  /**
   * Apply a join or a leave; true when the list changed (a repeated event changes nothing).
   * @param {import("./client.js").PresenceEvent} event
   * @returns {boolean}
   */
  apply(event) {
    if (event.presence === "join") {
      const known = this.members.has(event.client);
      this.members.set(event.client, { client: event.client, user: event.user ?? null, info: event.info ?? null });
      return !known;
    }
    return this.members.delete(event.client);
  }

  /** How many clients are in the room. */
  get size() {
    return this.members.size;
  }

  /**
   * Clients per signed-in user; anonymous clients are under `null`.
   * @returns {Map<string | null, number>}
   */
  byUser() {
    /** @type {Map<string | null, number>} */
    const counts = new Map();
    for (const member of this.members.values()) counts.set(member.user, (counts.get(member.user) ?? 0) + 1);
    return counts;
  }

  /**
   * The counts a server's `presence_stats` gives: clients, distinct signed-in users, anonymous clients.
   * @returns {import("./client.js").PresenceStats}
   */
  stats() {
    const counts = this.byUser();
    const anonymous = counts.get(null) ?? 0;
    return { clients: this.members.size, users: counts.size - (counts.has(null) ? 1 : 0), anonymous };
  }
}
