// Roster and isPresenceEvent (presence.js) against a real daphne: two clients in one
// interop.room; the first keeps a roster from interop.presence and the room's events.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Roster, StreamClient, isPresenceEvent } from "../../streaming_app/static/streaming_app/client.js";
import { env, needsServer, uniqueTag } from "./helpers.mjs";

const options = { skip: needsServer, timeout: 30000 };

/** The next presence event of a room's stream (data items skipped). */
async function nextPresence(iterator) {
  for (let i = 0; i < 100; i++) {
    const { value, done } = await iterator.next();
    assert.equal(done, false, "the room ended");
    if (isPresenceEvent(value)) return value;
  }
  throw new Error("no presence event within 100 items");
}

test("a roster follows the room's joins and leaves", options, async () => {
  const topic = uniqueTag("room");
  const first = new StreamClient(env.wsUrl);
  const second = new StreamClient(env.wsUrl);
  try {
    const mine = first.stream("interop.room", { topic })[Symbol.asyncIterator]();
    const own = await nextPresence(mine);
    const read = await first.call("interop.presence", { topic });
    assert.equal(read.clients, 1);
    const roster = new Roster([{ client: own.client, user: own.user, info: null }]);

    const theirs = second.stream("interop.room", { topic });
    const theirOwn = nextPresence(theirs); // a stream starts on its first next()
    const joined = await nextPresence(mine);
    assert.equal((await theirOwn).client, joined.client);
    assert.equal(roster.apply(joined), true);
    assert.deepEqual(roster.stats(), { clients: 2, users: 0, anonymous: 2 });
    assert.equal(roster.apply(joined), false, "a repeated join changes nothing");

    theirs.cancel();
    const left = await nextPresence(mine);
    assert.equal(left.presence, "leave");
    assert.equal(left.client, joined.client);
    assert.equal(roster.apply(left), true);
    assert.deepEqual([...roster.byUser()], [[null, 1]]);
  } finally {
    await first.close();
    await second.close();
  }
});

test("isPresenceEvent tells presence events from data items", () => {
  assert.equal(isPresenceEvent({ presence: "join", client: "a.1", user: null }), true);
  assert.equal(isPresenceEvent({ presence: "stay", client: "a.1" }), false);
  assert.equal(isPresenceEvent({ hello: 1 }), false);
  assert.equal(isPresenceEvent(null), false);
});
