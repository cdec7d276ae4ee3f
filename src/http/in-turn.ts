// HTTP/1.1 pipelining: Node parses a request sent behind another at once, while answers leave in
// order. Each request is therefore handled only once the one before it on its connection is
// answered, and not at all when that answer closed the connection (a 413 or 503 whose body was
// never read): what follows it on the wire is never acted upon.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** On each connection: the answer of its latest request (a property, cheaper than a WeakMap per request). */
const LATEST = Symbol("latest answer");
type Connection = Socket & { [LATEST]?: ServerResponse };

export function inTurn(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  const socket: Connection = req.socket;
  const previous = socket[LATEST];
  socket[LATEST] = res;
  // The usual case, one request at a time: nothing to wait for, nothing allocated.
  if (previous === undefined) return handle();
  // An answer with Connection: close has ended the socket's writable side once it closed.
  const stillOpen = () => previous.writableFinished && socket.writable && !socket.destroyed;
  if (previous.closed) {
    if (stillOpen()) handle();
    return;
  }
  previous.once("close", () => {
    if (stillOpen()) handle();
  });
}
