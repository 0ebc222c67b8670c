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
      else show(status, "error", `${error.code ?? error.name}: ${error.message}`);
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

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = form.elements.message.value.trim();
    if (!text || call === null) return;
    form.elements.message.value = "";
    try {
      await call.send({ text, sent: Date.now() });
    } catch (error) {
      show(status, "error", `${error.code ?? error.name}: ${error.message}`);
    }
  });

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
      show(status, "error", `${error.code ?? error.name}: ${error.message}`);
      if (client.state === "closed") return;
    }
  }
}
