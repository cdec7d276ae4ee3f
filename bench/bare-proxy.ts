// The yardstick: the smallest proxy one would write by hand in front of WeCom. It replaces
// access_token with a fixed one and forwards over a keep-alive pool, nothing else (no
// errcode, no replay, no log, no metrics). Three transports, so the bench can measure the
// forwarding leg alone: node:http, http-proxy, undici. Prints {"url": …}; stops on SIGTERM.
import http from "node:http";
import type { AddressInfo } from "node:net";
import httpProxy from "http-proxy";
import { Pool } from "undici";

export type Transport = "node:http" | "http-proxy" | "undici";

const { upstream, token, transport } = JSON.parse(process.argv[2] ?? "{}") as {
  upstream: string;
  token: string;
  transport: Transport;
};
const origin = new URL(upstream);

/** The request's target with every access_token replaced by ours. */
function target(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return `${url}?access_token=${token}`;
  const kept = url
    .slice(q + 1)
    .split("&")
    .filter((param) => !param.startsWith("access_token="));
  kept.push(`access_token=${token}`);
  return `${url.slice(0, q)}?${kept.join("&")}`;
}

function fail(res: http.ServerResponse): void {
  if (res.headersSent) res.destroy();
  else res.writeHead(502).end();
}

/** As one would write it: pipe() both ways (pipeline() costs an AbortController per call). */
function nodeHttp(): http.RequestListener {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return (req, res) => {
    const headers = { ...req.headers, host: origin.host };
    const out = http.request(
      { host: origin.hostname, port: origin.port, method: req.method, path: target(req.url ?? "/"), headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on("error", () => fail(res));
    // The client gone before the answer's end: so is the exchange with WeCom.
    res.on("close", () => {
      if (!res.writableFinished) out.destroy();
    });
    req.pipe(out);
  };
}

function viaHttpProxy(): http.RequestListener {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ target: origin, agent, xfwd: false, changeOrigin: true });
  return (req, res) => {
    req.url = target(req.url ?? "/");
    proxy.web(req, res, {}, () => fail(res));
  };
}

function viaUndici(): http.RequestListener {
  const pool = new Pool(origin, { connections: 256, pipelining: 1 });
  return (req, res) => {
    const headers = { ...req.headers, host: origin.host };
    delete headers.connection;
    pool
      .stream(
        { method: req.method as "GET", path: target(req.url ?? "/"), headers, body: req.method === "GET" ? null : req },
        ({ statusCode, headers: answerHeaders }) => {
          res.writeHead(statusCode, answerHeaders as http.OutgoingHttpHeaders);
          return res;
        },
      )
      .catch(() => fail(res));
  };
}

const listeners: Record<Transport, () => http.RequestListener> = {
  "node:http": nodeHttp,
  "http-proxy": viaHttpProxy,
  undici: viaUndici,
};
const server = http.createServer({ keepAliveTimeout: 30_000 }, listeners[transport]());
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.once("SIGTERM", () => process.exit(0));
