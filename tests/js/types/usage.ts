// Type-checks client.d.ts against typical use (tsc -p tsconfig.json at the
// repository's root, run by tests/e2e/test_js_client.py). Never executed. Lines
// marked @ts-expect-error must stay errors: they prove the declarations reject
// misuse.
import {
  Call,
  DeadlineExceeded,
  ERROR_CLASSES,
  SseParser,
  StateLost,
  Stream,
  StreamClient,
  StreamError,
  ticketFetcher,
  sseStream,
  Roster,
  isPresenceEvent,
  type PresenceMember,
  type PresenceStats,
  type ConnectionState,
  type ErrorCode,
  type Hello,
} from "../../../streaming_app/static/streaming_app/client.js";

interface Count {
  i: number;
}

export async function usage(WebSocketClass: typeof WebSocket): Promise<void> {
  const client = new StreamClient("ws://127.0.0.1:8000/ws/", {
    WebSocket: WebSocketClass,
    token: "abc",
    window: 8,
    reconnectInitial: 0.05,
    heartbeat: false,
    ticket: ticketFetcher("/streams/_ticket"),
    onStateChange: (state: ConnectionState) => void state,
  });
  const hello: Hello = await client.ready;
  const max: number = hello.limits.client_window;
  void max;

  const echoed = await client.call<{ payload: string }>("interop.unary", { payload: "hi" }, { timeout: 2 });
  const text: string = echoed.payload;
  void text;

  const controller = new AbortController();
  const stream: Stream<Count, { total: number }> = client.stream("interop.count", { n: 3 }, { signal: controller.signal, timeout: 5, window: 4 });
  for await (const item of stream) {
    const i: number = item.i;
    if (i > 1) break;
  }
  const total: number | undefined = stream.result?.total;
  void total;
  await stream.return();
  const resumeFrom: string | null = stream.lastEventId;
  void resumeFrom;

  const call: Call<string, null, string> = await client.open("interop.echo");
  await call.send("a");
  await call.end();
  for await (const reply of call) {
    const s: string = reply;
    void s;
  }
  const sum = await client.open<never, { sum: number }, { v: number }>("interop.sum");
  await sum.send({ v: 1 });
  // @ts-expect-error: the items of interop.sum are {v: number}
  await sum.send("one");
  const result: { sum: number } = await sum.result();
  void result;

  try {
    await client.call("interop.fail", { code: "not_found" });
  } catch (error) {
    if (error instanceof StreamError) {
      const code: ErrorCode = error.code;
      const details: Record<string, any> = error.details;
      const retryAfter: number | null = error.retryAfter;
      void code, details, retryAfter;
    }
    if (error instanceof StateLost || error instanceof DeadlineExceeded) throw error;
  }
  const cls: typeof StreamError = ERROR_CLASSES.not_found;
  void cls;

  client.addEventListener("statechange", (event) => {
    const state: ConnectionState = event.detail.state;
    void state;
  });
  const unsubscribe: () => void = client.onStateChange((state) => void state);
  unsubscribe();

  const patient = new StreamClient("/ws/", { retryThrottled: { retries: 2, maxWait: 10 } });
  const bounds: { retries: number; maxWait: number } | null = patient.retryThrottled;
  void bounds;
  // @ts-expect-error: maxWait is seconds, a number
  new StreamClient("/ws/", { retryThrottled: { maxWait: "10s" } });
  // @ts-expect-error: retryAfter is read from the server's details, not set
  new StreamError().retryAfter = 1;

  // @ts-expect-error: a method name is a string
  await client.call(42);
  // @ts-expect-error: timeouts are seconds, a number
  client.stream("interop.count", {}, { timeout: "5s" });
  // @ts-expect-error: there is no such state
  const wrong: ConnectionState = "opening";
  void wrong;

  const parser = new SseParser();
  for (const event of parser.push(new Uint8Array([100, 97, 116, 97, 58, 32, 49, 10, 10]))) {
    const data: string = event.data;
    void data;
  }
  const sse = sseStream<Count, { total: number }>("/streams/interop.count", { n: 2 }, { method: "POST", headers: { "X-A": "1" }, signal: controller.signal });
  for await (const item of sse) void item.i;
  void sse.result?.total;

  await client.close();
}

// Presence: a roster from a read, then events from a stream.
export async function presenceUsage(client: StreamClient): Promise<number> {
  const members: PresenceMember<{ name: string }>[] = await client.call("chat.members", { room: "lobby" });
  const roster = new Roster<{ name: string }>(members);
  for await (const item of client.stream("interop.room", { topic: "lobby" })) {
    if (isPresenceEvent<{ name: string }>(item)) roster.apply(item);
  }
  const stats: PresenceStats = roster.stats();
  const alice: number | undefined = roster.byUser().get("alice");
  // @ts-expect-error a presence event is a join or a leave
  roster.apply({ presence: "stay", client: "x", user: null });
  return stats.clients + (alice ?? 0) + roster.size;
}
