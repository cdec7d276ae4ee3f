// Listening and draining, for both listeners: the shown URL, the requests in flight, and a
// stop that lets them finish (up to a grace period) before it cuts what is left.
import type http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { ListenerLimits } from "../config/load.js";
import { inTurn } from "./in-turn.js";
import { createLimitedServer } from "./listener-limits.js";

/** Work in progress that can be waited for. */
export class InFlight {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  get busy(): boolean {
    return this.active > 0;
  }

  track<T>(work: Promise<T>): Promise<T> {
    return work.finally(this.enter());
  }

  /** Work that is done once the returned function has been called `parts` times. */
  enter(parts = 1): () => void {
    this.active += 1;
    let left = parts;
    return () => {
      left -= 1;
      if (left !== 0) return;
      this.active -= 1;
      if (this.active === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  /** Resolves when nothing is in flight any more. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Answers one request (a pipelined one in its turn); resolves when it is done with it (answered, or given up). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;
  /** A handler that rejected: a bug, kept from crashing the process. */
  readonly onUnexpected: (error: unknown) => void;
  /** Timeouts, header size and connection cap (README "Limits"). */
  readonly limits: ListenerLimits;
}

export interface Listener {
  readonly server: http.Server;
  /** http://host:port, with the port actually bound. */
  readonly url: string;
  /**
   * Stops accepting, lets in-flight requests finish (up to graceMs, then cuts their
   * connections), and resolves once every handler is done and every connection closed.
   */
  drain(graceMs: number): Promise<void>;
}

/** Listens; rejects when it cannot (the port is taken, the host is not local). */
export async function listen(options: ListenOptions): Promise<Listener> {
  const inFlight = new InFlight();
  let stopping = false;
  const server = createLimitedServer(options.limits, (req, res) =>
    inTurn(req, res, () => {
      // While stopping, a request that still arrives on an open connection is answered, then
      // its connection closes.
      if (stopping) res.shouldKeepAlive = false;
      // Done when the handler is and the answer has left.
      const done = inFlight.enter(2);
      res.once("close", done);
      options.handle(req, res).then(done, (error: unknown) => {
        options.onUnexpected(error);
        done();
      });
    }),
  );
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    url: shownUrl(server.address() as AddressInfo),
    async drain(graceMs) {
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), graceMs);
      try {
        // A request may still arrive on an open connection while others finish: check again.
        while (inFlight.busy) await inFlight.idle();
        // Nothing is in flight: what is still open is an idle keep-alive connection, or one
        // whose last answers are still being written; end() closes it after they are sent.
        for (const socket of sockets) socket.end();
        await closed;
      } finally {
        clearTimeout(grace);
      }
    },
  };
}

function shownUrl(address: AddressInfo): string {
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
