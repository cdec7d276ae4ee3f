// Listening, swapping the runtime on a configuration reload, and stopping gracefully.
import type http from "node:http";
import { InFlight, listen } from "../http/listener.js";
import type { Runtime } from "./create-proxy.js";
import { handleRequest } from "./handle-request.js";

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
  readonly inFlight = new InFlight();

  constructor(readonly runtime: Runtime) {}
}

export async function startServer(runtime: Runtime, host: string, port: number): Promise<RunningServer> {
  let current = new Generation(runtime);
  const retirements = new Set<Promise<void>>();
  const listener = await listen({
    host,
    port,
    limits: runtime.config.limits,
    // A runtime is retired once its handlers are done; the answers' last bytes need no runtime.
    handle: (req, res) => {
      const generation = current;
      return generation.inFlight.track(handleRequest(generation.runtime, req, res));
    },
    // handleRequest answers every failure itself; reaching here is a bug.
    onUnexpected: (error) => current.runtime.log.error({ err: error }, "unexpected failure after a request"),
  });
  return {
    server: listener.server,
    url: listener.url,
    get runtime() {
      return current.runtime;
    },
    replaceRuntime(next) {
      const previous = current;
      current = new Generation(next);
      const retired = previous.inFlight
        .idle()
        .then(() => previous.runtime.retire(next))
        .finally(() => retirements.delete(retired));
      retirements.add(retired);
      return retired;
    },
    async close(graceMs = 10_000) {
      await listener.drain(graceMs);
      await Promise.all(retirements);
      await current.runtime.close();
    },
  };
}
