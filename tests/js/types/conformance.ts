// The hand-written declarations (client.d.ts) against the implementation's
// JSDoc types (the modules beside client.js), checked by tsc -p tsconfig.json:
// every class, function and constant the declarations promise is there with a
// type assignable to the declared one. Never executed.
import type * as Declared from "../../../streaming_app/static/streaming_app/client.js";
import * as call from "../../../streaming_app/static/streaming_app/call.js";
import * as codes from "../../../streaming_app/static/streaming_app/codes.js";
import * as connection from "../../../streaming_app/static/streaming_app/connection.js";
import * as errors from "../../../streaming_app/static/streaming_app/errors.js";
import * as http from "../../../streaming_app/static/streaming_app/http.js";
import * as sse from "../../../streaming_app/static/streaming_app/sse.js";

/** `Implemented` is assignable to `Promised`: a compile error names what differs. */
function conforms<Promised>(implemented: Promised): void {
  void implemented;
}

export function check(
  client: connection.StreamClient,
  unary: call.Call,
  stream: call.Stream,
  parser: sse.SseParser,
  sseStream: sse.SseStream,
  state: call.CallState,
): void {
  conforms<Declared.StreamClient>(client);
  conforms<Declared.Call>(unary);
  conforms<Declared.Stream>(stream);
  conforms<Declared.CallState>(state);
  conforms<Declared.SseParser>(parser);
  conforms<Declared.SseStream>(sseStream);
  conforms<typeof Declared.SseStream>(sse.SseStream);
  conforms<typeof Declared.SseParser>(sse.SseParser);
  conforms<typeof Declared.StreamClient>(connection.StreamClient);
  conforms<typeof Declared.sseStream>(sse.sseStream);
  conforms<typeof Declared.httpError>(http.httpError);
  conforms<typeof Declared.ticketFetcher>(http.ticketFetcher);
  conforms<typeof Declared.SUBPROTOCOL>(codes.SUBPROTOCOL);
  conforms<typeof Declared.RECONNECT_CLOSE_CODES>(codes.RECONNECT_CLOSE_CODES);
  conforms<typeof Declared.ERROR_CLASSES>(errors.ERROR_CLASSES);
  conforms<Declared.ErrorCode>(errors.StreamError.code);
  conforms<typeof Declared.StreamError>(errors.StreamError);
  conforms<typeof Declared.Cancelled>(errors.Cancelled);
  conforms<typeof Declared.Unknown>(errors.Unknown);
  conforms<typeof Declared.InvalidArgument>(errors.InvalidArgument);
  conforms<typeof Declared.DeadlineExceeded>(errors.DeadlineExceeded);
  conforms<typeof Declared.NotFound>(errors.NotFound);
  conforms<typeof Declared.AlreadyExists>(errors.AlreadyExists);
  conforms<typeof Declared.PermissionDenied>(errors.PermissionDenied);
  conforms<typeof Declared.ResourceExhausted>(errors.ResourceExhausted);
  conforms<typeof Declared.FailedPrecondition>(errors.FailedPrecondition);
  conforms<typeof Declared.Aborted>(errors.Aborted);
  conforms<typeof Declared.OutOfRange>(errors.OutOfRange);
  conforms<typeof Declared.Unimplemented>(errors.Unimplemented);
  conforms<typeof Declared.Internal>(errors.Internal);
  conforms<typeof Declared.Unavailable>(errors.Unavailable);
  conforms<typeof Declared.DataLoss>(errors.DataLoss);
  conforms<typeof Declared.Unauthenticated>(errors.Unauthenticated);
  conforms<typeof Declared.StateLost>(errors.StateLost);
}
