// HTTP/1.1 pipelining: Node parses a request sent behind another at once, while answers leave in
// order. Each request is therefore handled only once the one before it on its connection is
// answered, and not at all when that answer closed the connection (a 413 or 503 whose body was
// never read): what follows it on the wire is never acted upon.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Per connection: resolves when its latest request is answered, true if the connection stays open. */
const turns = new WeakMap<Socket, Promise<boolean>>();

export function inTurn(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  const socket = req.socket;
  const previous = turns.get(socket);
  turns.set(socket, new Promise((resolve) => res.once("close", () => resolve(res.writableFinished))));
  if (previous === undefined) return handle();
  void previous.then((answered) => {
    // An answer with Connection: close has ended the socket's writable side by now.
    if (answered && socket.writable && !socket.destroyed) handle();
  });
}
