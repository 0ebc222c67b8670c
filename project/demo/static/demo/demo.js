// The panels of the live demo page (project/demo/templates/demo/index.html).
// Each mount function takes its element and the page's StreamClient, so a new
// panel is one more section in the template and one more function here.

function show(element, status, text) {
  element.dataset.status = status;
  element.textContent = text;
}

function append(list, text) {
  const item = document.createElement("li");
  item.textContent = text;
  list.append(item);
  item.scrollIntoView({ block: "nearest" });
}

/** Resolves once the client is open (at once if it is). */
function whenOpen(client) {
  if (client.state === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const stop = client.onStateChange((state) => {
      if (state === "open") resolve();
      else if (state === "closed") reject(new Error("the client is closed"));
      if (state === "open" || state === "closed") stop();
    });
  });
}

/** The connection state, live. */
export function mountConnection(output, client) {
  const render = (state) => {
    output.dataset.state = state;
    output.textContent = state;
  };
  render(client.state);
  client.onStateChange(render);
}

/** Who the WebSocket handshake authenticated (the session cookie of this origin). */
export async function mountWhoami(element, client) {
  try {
    const me = await client.call("interop.whoami");
    element.dataset.user = me.username;
    element.textContent = me.is_staff ? `${me.username} (staff)` : me.username;
  } catch (error) {
    element.dataset.user = "";
    element.textContent = error.code === "unauthenticated" ? "nobody (anonymous)" : `? (${error.code ?? error.name})`;
  }
}

/** A server stream: Start iterates interop.count into a list; Stop aborts it, cancelling it on the server. */
export function mountCounter(section, client) {
  const form = section.querySelector("form");
  const status = section.querySelector("[data-status]");
  const list = section.querySelector("[data-items]");
  let current = null;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    current?.abort();
    const controller = (current = new AbortController());
    const args = { n: Number(form.elements.n.value), interval_ms: Number(form.elements.interval_ms.value) };
    list.replaceChildren();
    show(status, "streaming", "streaming…");
    const stream = client.stream("interop.count", args, { signal: controller.signal, window: 16 });
    try {
      for await (const item of stream) append(list, `item ${item.i}`);
      if (current === controller) show(status, "done", `done, the stream returned ${JSON.stringify(stream.result)}`);
    } catch (error) {
      if (current !== controller) return; // replaced by a newer run
      if (controller.signal.aborted) show(status, "stopped", "stopped (cancelled on the server)");
      else show(status, "error", describe(error));
    }
  });
  section.querySelector("[data-stop]").addEventListener("click", () => current?.abort());
}

/** A bidirectional call kept open: every message goes out with send() and comes back through the loop. */
export async function mountEcho(section, client) {
  const form = section.querySelector("form");
  const status = section.querySelector("[data-status]");
  const list = section.querySelector("[data-replies]");
  let call = null;

  sendFromForm(form, status, () => call, (text) => ({ text, sent: Date.now() }));

  // One call at a time; a new one after the connection comes back.
  for (;;) {
    try {
      await whenOpen(client);
      call = await client.open("interop.echo");
      show(status, "open", "open: type a message");
      for await (const reply of call) append(list, `${reply.text} (back in ${Date.now() - reply.sent} ms)`);
      show(status, "ended", "the call ended");
      return;
    } catch (error) {
      call = null;
      show(status, "error", describe(error));
      if (client.state === "closed") return;
    }
  }
}

const REJOIN_DELAY_MS = 1000;

/** Sends the form's message, made into an item by toItem, on the call open at the time (none: nothing is sent). */
function sendFromForm(form, status, currentCall, toItem) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.message.value.trim();
    const call = currentCall();
    if (!text || call === null) return;
    form.elements.message.value = "";
    try {
      await call.send(toItem(text));
    } catch (error) {
      show(status, "error", describe(error));
    }
  });
}

function describe(error) {
  return `${error.code ?? error.name}: ${error.message}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The chat room: one chat.room call stays open; what the form sends is published to
 * the room, and every message of the room (this tab's included) comes back through
 * the loop. With `members: true` the call also says who is in the room (a snapshot,
 * then each join and leave, from every server process): the member list beside it.
 * A refused message (invalid_argument) ends the call: show why and rejoin.
 */
export async function mountChat(section, client, room = "lobby") {
  const form = section.querySelector("form");
  const status = section.querySelector("[data-status]");
  const list = section.querySelector("[data-messages]");
  const roster = section.querySelector("[data-members]");
  const name = `guest-${Math.random().toString(36).slice(2, 6)}`; // signed-in users appear under their username
  const members = new Map(); // client id -> <li>
  let call = null;

  const addMember = (member) => {
    let item = members.get(member.client);
    if (!item) {
      item = document.createElement("li");
      item.dataset.client = member.client;
      members.set(member.client, item);
      roster.append(item);
    }
    item.textContent = member.name || "someone";
  };
  const removeMember = (clientId) => {
    members.get(clientId)?.remove();
    members.delete(clientId);
  };
  const resetMembers = () => {
    for (const clientId of [...members.keys()]) removeMember(clientId);
  };

  sendFromForm(form, status, () => call, (text) => ({ text }));

  for (;;) {
    try {
      await whenOpen(client);
      call = await client.open("chat.room", { room, name, members: true });
      show(status, "open", `in #${room}: type a message`);
      for await (const item of call) {
        if (item.members) {
          resetMembers();
          item.members.forEach(addMember);
        } else if (item.presence === "join") addMember(item);
        else if (item.presence === "leave") removeMember(item.client);
        else append(list, `${item.from}: ${item.text}`);
      }
      show(status, "ended", "left the room");
      return;
    } catch (error) {
      call = null;
      resetMembers();
      show(status, "error", describe(error));
      if (client.state === "closed") return;
      await sleep(REJOIN_DELAY_MS);
    }
  }
}

/**
 * The live list: notes.watch sends a snapshot of the notes, then each change as it
 * is committed (by any tab, the admin, or the ORM). The list is rebuilt from a new
 * snapshot after a reconnection.
 */
export async function mountNotes(section, client) {
  const form = section.querySelector("form");
  const status = section.querySelector("[data-status]");
  const list = section.querySelector("[data-notes]");
  const rows = new Map(); // pk -> <li>

  const render = (note) => {
    let item = rows.get(note.id);
    if (!item) {
      item = document.createElement("li");
      item.dataset.pk = String(note.id);
      rows.set(note.id, item);
      list.append(item);
    }
    item.textContent = note.owner ? `${note.text} (${note.owner})` : note.text;
  };
  const remove = (pk) => {
    rows.get(pk)?.remove();
    rows.delete(pk);
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    form.elements.text.value = "";
    try {
      await client.call("notes.add", { text });
    } catch (error) {
      show(status, "error", describe(error));
    }
  });

  for (;;) {
    try {
      await whenOpen(client);
      for (const pk of [...rows.keys()]) remove(pk);
      show(status, "loading", "loading…");
      for await (const change of client.stream("notes.watch", {}, { window: 64 })) {
        if (change.op === "snapshot") {
          change.data.forEach(render);
          if (change.last) show(status, "live", `live: ${rows.size} notes`);
        } else if (change.op === "deleted") {
          remove(change.pk);
        } else {
          render(change.data);
        }
        if (change.op !== "snapshot") show(status, "live", `live: ${rows.size} notes`);
      }
      show(status, "ended", "the stream ended");
      return;
    } catch (error) {
      show(status, "error", describe(error));
      if (client.state === "closed") return;
      await sleep(REJOIN_DELAY_MS);
    }
  }
}
