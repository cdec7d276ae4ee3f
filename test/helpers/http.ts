import http from "node:http";

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: http.OutgoingHttpHeaders | readonly string[];
  readonly body?: Buffer | string;
  readonly agent?: http.Agent | false;
  /** Sent exactly as given in the request line (a URL string would resolve "." and ".."). */
  readonly rawPath?: string;
}

/** One request over a real socket; the whole answer in memory. */
export function request(url: string, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: options.rawPath ?? `${target.pathname}${target.search}`,
        method: options.method ?? (options.body === undefined ? "GET" : "POST"),
        headers: options.headers as http.OutgoingHttpHeaders,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body,
            json: <T>() => JSON.parse(body.toString("utf8")) as T,
          });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

export async function getJson<T = Record<string, unknown>>(url: string, options: RequestOptions = {}): Promise<T> {
  return (await request(url, options)).json<T>();
}
