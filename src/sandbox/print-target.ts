// `npm run sandbox`'s internal app: prints every relayed callback it receives, answers 200.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface PrintTarget {
  /** http://127.0.0.1:PORT */
  readonly origin: string;
  close(): Promise<void>;
}

export async function startPrintTarget(port: number, print: (text: string) => void): Promise<PrintTarget> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const header = (name: string) => String(req.headers[name] ?? "-");
      print(
        `[target] ${req.method} ${req.url} app=${header("x-wecom-callback-app")} ` +
          `event=${header("x-wecom-event-id")} (${header("content-type")})\n` +
          `         ${Buffer.concat(chunks).toString("utf8")}\n`,
      );
      res.writeHead(200).end();
    });
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      const closed = once(server, "close");
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
