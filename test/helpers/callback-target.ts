// An internal app receiving relayed callbacks: records what arrives, answers as told, and can
// go down and come back on the same port.
import { EventEmitter, once } from "node:events";
import { randomUUID } from "node:crypto";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface TargetAnswer {
  readonly status: number;
  readonly body?: string;
  readonly contentType?: string;
}

export class CallbackTarget {
  /** Emits "request" (Received) for every request, whatever the answer. */
  readonly events = new EventEmitter();
  readonly received: Received[] = [];
  /** What the next requests get; the last one stays. */
  answers: TargetAnswer[] = [{ status: 200 }];
  /** Requests wait for this before they are answered, when set. */
  hold: Promise<void> | undefined;

  /**
   * Its own path: a dead letter that an earlier test left in a shared Redis is counted for the
   * target with its URL, and a port is soon reused.
   */
  readonly path = `/wecom/events/${randomUUID().slice(0, 8)}`;
  private server = this.newServer();
  private port = 0;

  async listen(): Promise<string> {
    this.server.listen(this.port, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}${this.path}`;
  }

  /** Refuses connections until listen() is called again (same port). */
  async down(): Promise<void> {
    const closed = once(this.server, "close");
    this.server.close();
    this.server.closeAllConnections();
    await closed;
    this.server = this.newServer();
  }

  close(): Promise<void> {
    return this.server.listening ? this.down() : Promise.resolve();
  }

  /** Bodies of the requests answered so far, in arrival order. */
  bodies(): string[] {
    return this.received.map((r) => r.body);
  }

  /** Resolves once `count` requests in all have arrived (bounded by the test's timeout). */
  async waitForRequests(count: number): Promise<Received[]> {
    while (this.received.length < count) await once(this.events, "request");
    return this.received.slice(0, count);
  }

  private newServer(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const received = { path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        const answer =
          this.answers.length > 1 ? (this.answers.shift() as TargetAnswer) : (this.answers[0] as TargetAnswer);
        this.received.push(received);
        this.events.emit("request", received);
        const respond = () =>
          res.writeHead(answer.status, { "content-type": answer.contentType ?? "text/plain" }).end(answer.body ?? "");
        if (this.hold === undefined) respond();
        else void this.hold.then(respond);
      });
    });
  }
}
