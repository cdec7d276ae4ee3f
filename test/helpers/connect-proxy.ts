// A small forward proxy that only tunnels (CONNECT), as corporate egress proxies do. It
// tunnels to this machine only (127.0.0.1 or localhost), and can demand Basic credentials.
import { once } from "node:events";
import http from "node:http";
import net, { type AddressInfo } from "node:net";

export interface ConnectProxy {
  /** http://[user:password@]127.0.0.1:PORT */
  readonly url: string;
  /** host:port of every CONNECT received, accepted or not. */
  readonly connects: string[];
  close(): Promise<void>;
}

export async function startConnectProxy(credentials?: { user: string; password: string }): Promise<ConnectProxy> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const expected =
    credentials === undefined
      ? undefined
      : `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
  const server = http.createServer((_req, res) => res.writeHead(405).end("this proxy only tunnels (CONNECT)\n"));
  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? "";
    connects.push(target);
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    if (expected !== undefined && req.headers["proxy-authorization"] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\n\r\n');
      return;
    }
    const match = /^(?:127\.0\.0\.1|localhost):(\d+)$/.exec(target);
    if (match === null) {
      client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = net.connect(Number(match[1]), "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.once("close", () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.once("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const auth = credentials === undefined ? "" : `${credentials.user}:${credentials.password}@`;
  return {
    url: `http://${auth}127.0.0.1:${port}`,
    connects,
    async close() {
      for (const socket of sockets) socket.destroy();
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
