// Listening and stopping.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createRequestHandler } from "./handle-request.js";
import type { Runtime } from "./create-proxy.js";

export interface RunningServer {
  readonly server: http.Server;
  /** http://host:port, with the port actually bound. */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then releases the runtime. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(runtime: Runtime, host: string, port: number): Promise<RunningServer> {
  const server = http.createServer(
    { requireHostHeader: false },
    createRequestHandler(() => runtime),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    close: (graceMs = 10_000) => stop(server, runtime, graceMs),
  };
}

async function stop(server: http.Server, runtime: Runtime, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(grace);
  await runtime.close();
}
