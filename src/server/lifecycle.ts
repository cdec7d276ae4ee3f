// Listening, swapping the runtime on a configuration reload, and stopping gracefully.
import type http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Runtime } from "./create-proxy.js";
import { handleRequest } from "./handle-request.js";
import { inTurn } from "./in-turn.js";
import { createLimitedServer } from "./listener-limits.js";

export interface RunningServer {
  readonly server: http.Server;
  /** http://host:port, with the port actually bound. */
  readonly url: string;
  /** The runtime new requests get. */
  readonly runtime: Runtime;
  /**
   * New requests use `next` from now on; requests in flight finish on the current runtime,
   * which is then retired. Resolves once it is.
   */
  replaceRuntime(next: Runtime): Promise<void>;
  /**
   * Stops accepting, lets in-flight requests finish (up to graceMs, then cuts their
   * connections), then releases the runtime and its store.
   */
  close(graceMs?: number): Promise<void>;
}

/** A runtime and the requests still using it. */
class Generation {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly runtime: Runtime) {}

  get busy(): boolean {
    return this.active > 0;
  }

  track(work: Promise<void>): Promise<void> {
    this.active += 1;
    return work.finally(() => {
      this.active -= 1;
      if (this.active === 0) for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Resolves when no request uses this runtime any more. */
  idle(): Promise<void> {
    return this.active === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export async function startServer(runtime: Runtime, host: string, port: number): Promise<RunningServer> {
  let current = new Generation(runtime);
  const generations = new Set([current]);
  const retirements = new Set<Promise<void>>();
  let stopping = false;

  const server = createLimitedServer(runtime.config.limits, (req, res) =>
    inTurn(req, res, () => {
      // While stopping, a request that still arrives on an open connection is answered, then
      // its connection closes.
      if (stopping) res.shouldKeepAlive = false;
      // Done when the handler is and the answer has left (a pipelined one waits its turn).
      const answered = new Promise<void>((resolve) => res.once("close", () => resolve()));
      const generation = current;
      void generation
        .track(Promise.all([handleRequest(generation.runtime, req, res), answered]).then(() => undefined))
        .catch((error: unknown) => {
          // handleRequest answers every failure itself; reaching here is a bug, kept from crashing the process.
          generation.runtime.log.error({ err: error }, "unexpected failure after a request");
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
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const allIdle = async () => {
    // A request may still arrive on an open connection while others finish: check again.
    for (;;) {
      const busy = [...generations].filter((g) => g.busy);
      if (busy.length === 0) return;
      await Promise.all(busy.map((g) => g.idle()));
    }
  };

  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    get runtime() {
      return current.runtime;
    },
    replaceRuntime(next) {
      const previous = current;
      current = new Generation(next);
      generations.add(current);
      const retired = previous
        .idle()
        .then(() => previous.runtime.retire(next))
        .finally(() => {
          generations.delete(previous);
          retirements.delete(retired);
        });
      retirements.add(retired);
      return retired;
    },
    async close(graceMs = 10_000) {
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), graceMs);
      try {
        await allIdle();
        // Nothing is in flight: what is still open is an idle keep-alive connection, or one
        // whose last answers are still being written; end() closes it after they are sent.
        for (const socket of sockets) socket.end();
        await closed;
      } finally {
        clearTimeout(grace);
      }
      await Promise.all(retirements);
      await current.runtime.close();
    },
  };
}
