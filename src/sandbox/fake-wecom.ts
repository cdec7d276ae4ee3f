// A faithful, scriptable fake of WeCom's server API for tests, benchmarks and `npm run sandbox`.
// It keeps WeCom's rules (same token while valid, 40014/42001/41001, errcode in HTTP 200 answers)
// and lets a caller invalidate tokens, inject faults and see exactly what arrived.
import { createHash, randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import zlib from "node:zlib";
import { FakeTickets, type FakeTicketKind } from "./fake-tickets.js";
import { NOT_AN_API_PAGE, unimplementedApi } from "./fake-apis.js";
import { FakeCallbacks, textMessage } from "./fake-callbacks.js";
import { FakePermissions, type PermittedApp } from "./fake-permissions.js";
import { FakeLimits, type FakeLimitsOptions } from "./fake-limits.js";
import { recipientsOf } from "../wecom/limits.js";
import { mediaPart, parseRange, syntheticStream, type UploadedFile } from "./media.js";
import {
  ACCESS_TOKEN_EXPIRED,
  ACCESS_TOKEN_MISSING,
  FREQUENCY_LIMITED,
  CORPID_MISSING,
  INVALID_ACCESS_TOKEN,
  INVALID_CORPID,
  INVALID_CREDENTIAL,
  INVALID_MEDIA_ID,
  INVALID_PARAMETER,
  INVALID_USERID,
  INVALID_WEBHOOK_KEY,
  OK,
  SECRET_MISSING,
} from "../wecom/errcodes.js";

/** One secret WeCom knows: its corp, its app (agentid), its kind (families) and trusted IPs. */
export interface FakeApp extends PermittedApp {
  readonly corpid: string;
  readonly secret: string;
}

export interface FakeWeComOptions {
  readonly apps: readonly FakeApp[];
  readonly tokenLifetimeSeconds?: number;
  readonly webhookKeys?: readonly string[];
  readonly now?: () => number;
  /** jsapi ticket calls allowed per application and hour (WeCom: 100). */
  readonly ticketLimitPerHour?: number;
  /** WeCom's rate limits (default: WeCom's published ones, no concurrency limit). */
  readonly limits?: FakeLimitsOptions;
}

/** What the next matching request(s) get instead of a normal answer. */
export interface Fault {
  /** Exact path, e.g. "/cgi-bin/gettoken". */
  readonly path: string;
  /** How many requests it applies to (default 1). */
  readonly times?: number;
  /** Answer HTTP 200 with this errcode. */
  readonly errcode?: number;
  /** Answer with this HTTP status and a short text body. */
  readonly httpStatus?: number;
  /** Wait this long, then answer normally. */
  readonly delayMs?: number;
  /** Wait until this settles, then answer normally (in-process callers hold an answer at will). */
  readonly until?: Promise<unknown>;
  /** Never answer. */
  readonly hang?: boolean;
  /** Close the connection without answering. */
  readonly reset?: boolean;
  /** Send the headers and this many body bytes, then fall silent. */
  readonly stallAfterBytes?: number;
  /** Answer HTTP 200 with this JSON body (of any size, unlike WeCom's usual answers). */
  readonly json?: unknown;
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly rawQuery: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly rawHeaders: readonly string[];
  readonly bodySha256: string;
  readonly bodyLength: number;
}

interface IssuedToken {
  readonly app: FakeApp;
  readonly expiresAt: number;
  invalidated: boolean;
}

const JSON_TYPE = "application/json; charset=UTF-8";
/** How many received requests are kept for inspection (the newest; at most twice this many). */
const RECEIVED_KEPT = 10_000;
const USERS = new Map([
  ["zhangsan", { name: "张三", department: [1], position: "产品经理" }],
  ["lisi", { name: "李四", department: [1, 2], position: "工程师" }],
]);

export class FakeWeCom {
  /** Emits "request" (ReceivedRequest), "gettoken" ({ ok, errcode }), "aborted" (path). */
  readonly events = new EventEmitter();
  readonly received: ReceivedRequest[] = [];
  gettokenCalls = 0;
  /** Calls of /cgi-bin/get_jsapi_ticket and /cgi-bin/ticket/get, faulted ones too. */
  ticketCalls = 0;
  gzip = false;
  tokenLifetimeSeconds: number;
  /** Sends URL verifications and encrypted events to callback URLs, as WeCom does. */
  readonly callbacks: FakeCallbacks;
  /** Message drops, 45009 and 45033 as WeCom's limits give them; counts what it dropped. */
  readonly limits: FakeLimits;

  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly current = new Map<FakeApp, string>();
  private readonly faults: Array<Fault & { remaining: number }> = [];
  private readonly media = new Map<string, UploadedFile>();
  private readonly now: () => number;
  private readonly tickets: FakeTickets;
  private readonly permissions = new FakePermissions();
  private address: AddressInfo | undefined;

  constructor(private readonly options: FakeWeComOptions) {
    this.tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 7200;
    this.now = options.now ?? Date.now;
    this.tickets = new FakeTickets(this.now, 7200, options.ticketLimitPerHour ?? 100);
    this.callbacks = new FakeCallbacks(this.now);
    this.limits = new FakeLimits(options.limits ?? {}, this.now);
  }

  async listen(port = 0, host = "127.0.0.1"): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    this.address = this.server.address() as AddressInfo;
    return this.url;
  }

  get url(): string {
    if (this.address === undefined) throw new Error("the fake WeCom is not listening");
    return `http://127.0.0.1:${this.address.port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** Makes every current token (or those of one corp) answer 40014, as WeCom may at any time. */
  invalidateTokens(corpid?: string): number {
    let count = 0;
    for (const [app, token] of this.current) {
      if (corpid !== undefined && app.corpid !== corpid) continue;
      const issued = this.tokens.get(token);
      if (issued !== undefined && !issued.invalidated) {
        issued.invalidated = true;
        count += 1;
      }
      this.current.delete(app);
    }
    return count;
  }

  addFault(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Every token ever issued: tests check none of them reaches a log. */
  issuedTokens(): string[] {
    return [...this.tokens.keys()];
  }

  /** Every jsapi ticket ever issued. */
  issuedTickets(): string[] {
    return this.tickets.issuedTickets();
  }

  /** Requests received on `path` so far. */
  requestsTo(path: string): ReceivedRequest[] {
    return this.received.filter((r) => r.path === path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const body = await readAll(req);
    const mark = (req.url ?? "").indexOf("?");
    const received: ReceivedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      rawQuery: mark === -1 ? "" : (req.url ?? "").slice(mark + 1),
      headers: { ...req.headers },
      rawHeaders: [...req.rawHeaders],
      bodySha256: createHash("sha256").update(body).digest("hex"),
      bodyLength: body.length,
    };
    res.once("close", () => {
      if (!res.writableFinished) this.events.emit("aborted", url.pathname);
    });
    if (url.pathname.startsWith("/sandbox/")) return this.control(url, body, res);
    this.received.push(received);
    if (this.received.length > RECEIVED_KEPT * 2) this.received.splice(0, RECEIVED_KEPT); // bounded for long runs
    if (url.pathname === "/cgi-bin/gettoken") this.gettokenCalls += 1; // faulted ones too
    if (url.pathname === "/cgi-bin/get_jsapi_ticket" || url.pathname === "/cgi-bin/ticket/get") this.ticketCalls += 1;
    this.events.emit("request", received);
    if (this.limited(req, url, res)) return;
    const fault = this.takeFault(url.pathname);
    if (fault !== undefined && (await this.applyFault(fault, res))) return;
    this.route(req, url, body, res);
  }

  /** true when WeCom's limits answered the call (45009, 45033). */
  private limited(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    const corpid = this.tokens.get(url.searchParams.get("access_token") ?? "")?.app.corpid;
    if (corpid === undefined) return false;
    const ip = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const admitted = this.limits.admit(corpid, url.pathname, ip);
    res.once("close", () => admitted.done());
    if (admitted.errcode === undefined) return false;
    this.answerJson(
      res,
      admitted.errcode,
      admitted.errcode === FREQUENCY_LIMITED ? "api freq out of limit" : "api concurrent out of limit",
    );
    return true;
  }

  private takeFault(path: string): Fault | undefined {
    const index = this.faults.findIndex((f) => f.path === path);
    const fault = this.faults[index];
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    return fault;
  }

  /** true when the fault answered (or deliberately did not). */
  private async applyFault(fault: Fault, res: ServerResponse): Promise<boolean> {
    if (fault.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, fault.delayMs).unref());
    if (fault.until !== undefined) await fault.until.catch(() => undefined);
    if (fault.hang === true) return true;
    if (fault.reset === true) {
      res.socket?.destroy();
      return true;
    }
    if (fault.errcode !== undefined) {
      this.answerJson(res, fault.errcode, "fault injected by the sandbox");
      return true;
    }
    if (fault.httpStatus !== undefined) {
      res.writeHead(fault.httpStatus, { "content-type": "text/plain" }).end(`sandbox fault: HTTP ${fault.httpStatus}`);
      return true;
    }
    if (fault.json !== undefined) {
      res.writeHead(200, { "content-type": JSON_TYPE }).end(JSON.stringify(fault.json));
      return true;
    }
    if (fault.stallAfterBytes !== undefined) {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": fault.stallAfterBytes * 2 });
      res.write(Buffer.alloc(fault.stallAfterBytes, 1));
      return true;
    }
    return false;
  }

  private route(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): void {
    if (!url.pathname.startsWith("/cgi-bin/")) {
      return void res.writeHead(404, { "content-type": "text/html" }).end(NOT_AN_API_PAGE);
    }
    if (url.pathname === "/cgi-bin/gettoken") return this.gettoken(url, res);
    if (url.pathname.startsWith("/cgi-bin/webhook/")) return this.webhook(url, res);
    const app = this.authorize(url, res);
    if (app === undefined) return;
    const json = jsonOf(body);
    const refusal = this.permissions.refusal(app, url.pathname, url.searchParams, json, req.socket.remoteAddress ?? "");
    if (refusal !== undefined) return this.answerJson(res, refusal.errcode, refusal.errmsg);
    switch (url.pathname) {
      case "/cgi-bin/user/get":
        return this.userGet(url, res);
      case "/cgi-bin/department/list":
        return this.answerJson(res, 0, "ok", { department: [{ id: 1, name: "沙盒公司", parentid: 0, order: 1 }] });
      case "/cgi-bin/message/send":
        return this.messageSend(req, app, body, res);
      case "/cgi-bin/media/upload":
        return this.mediaUpload(req, url, body, res);
      case "/cgi-bin/media/get":
        return this.mediaGet(req, url, res);
      case "/cgi-bin/get_jsapi_ticket":
        return this.ticket(app, "jsapi", res);
      case "/cgi-bin/ticket/get":
        if (url.searchParams.get("type") !== "agent_config")
          return this.answerJson(res, INVALID_PARAMETER, "invalid type");
        return this.ticket(app, "agent_config", res);
      default: {
        // A created resource's id comes from the permissions; a plausible shape from fake-apis.
        const permitted = this.permissions.answer(app, url.pathname, json);
        const modelled = unimplementedApi({ app, url, users: USERS });
        const answer =
          permitted !== undefined && (permitted.fields !== undefined || permitted.errcode !== 0)
            ? permitted
            : modelled.errcode === 0
              ? modelled
              : (permitted ?? modelled);
        return this.answerJson(res, answer.errcode, answer.errmsg, answer.fields);
      }
    }
  }

  private gettoken(url: URL, res: ServerResponse): void {
    const corpid = url.searchParams.get("corpid") ?? "";
    const secret = url.searchParams.get("corpsecret") ?? "";
    const problem =
      corpid === ""
        ? ([CORPID_MISSING, "corpid missing"] as const)
        : secret === ""
          ? ([SECRET_MISSING, "corpsecret missing"] as const)
          : !this.options.apps.some((a) => a.corpid === corpid)
            ? ([INVALID_CORPID, "invalid corpid"] as const)
            : undefined;
    const app = this.options.apps.find((a) => a.corpid === corpid && a.secret === secret);
    const errcode = problem?.[0] ?? (app === undefined ? INVALID_CREDENTIAL : OK);
    this.events.emit("gettoken", { ok: errcode === 0, errcode });
    if (app === undefined || problem !== undefined)
      return this.answerJson(res, errcode, problem?.[1] ?? "invalid credential");
    const { token, expiresAt } = this.currentToken(app);
    const expiresIn = Math.max(1, Math.round((expiresAt - this.now()) / 1000));
    this.answerJson(res, 0, "ok", { access_token: token, expires_in: expiresIn });
  }

  /** WeCom's older rule: the same token while it is valid, a new one after. */
  private currentToken(app: FakeApp): { token: string; expiresAt: number } {
    const existing = this.current.get(app);
    const issued = existing === undefined ? undefined : this.tokens.get(existing);
    if (existing !== undefined && issued !== undefined && !issued.invalidated && this.now() < issued.expiresAt) {
      return { token: existing, expiresAt: issued.expiresAt };
    }
    const token = randomBytes(48).toString("base64url");
    const expiresAt = this.now() + this.tokenLifetimeSeconds * 1000;
    this.tokens.set(token, { app, expiresAt, invalidated: false });
    this.current.set(app, token);
    return { token, expiresAt };
  }

  /** The app an access_token belongs to, or WeCom's answer when there is none. */
  private authorize(url: URL, res: ServerResponse): FakeApp | undefined {
    const token = url.searchParams.get("access_token");
    if (token === null || token === "") return void this.answerJson(res, ACCESS_TOKEN_MISSING, "access_token missing");
    if (url.searchParams.getAll("access_token").length > 1)
      return void this.answerJson(res, INVALID_ACCESS_TOKEN, "invalid access_token");
    const issued = this.tokens.get(token);
    if (issued === undefined || issued.invalidated)
      return void this.answerJson(res, INVALID_ACCESS_TOKEN, "invalid access_token");
    if (this.now() >= issued.expiresAt) return void this.answerJson(res, ACCESS_TOKEN_EXPIRED, "access_token expired");
    return issued.app;
  }

  private userGet(url: URL, res: ServerResponse): void {
    const userid = url.searchParams.get("userid") ?? "";
    const user = USERS.get(userid);
    if (user === undefined) return this.answerJson(res, INVALID_USERID, "invalid userid");
    this.answerJson(res, 0, "ok", { userid, ...user, status: 1 });
  }

  private messageSend(req: IncomingMessage, app: FakeApp, body: Buffer, res: ServerResponse): void {
    if (req.method !== "POST") return this.answerJson(res, 43002, "require POST method");
    let message: { agentid?: unknown; msgtype?: unknown };
    try {
      message = JSON.parse(body.toString("utf8")) as typeof message;
    } catch {
      return this.answerJson(res, 47001, "data format error");
    }
    if (typeof message.msgtype !== "string") return this.answerJson(res, 41008, "missing msgtype");
    if (app.agentid !== undefined && Number(message.agentid) !== app.agentid) {
      return this.answerJson(res, 301002, "not allow operate another agent with this accesstoken");
    }
    this.limits.deliver(`${app.corpid}/${app.agentid ?? "-"}`, recipientsOf("/cgi-bin/message/send", body));
    this.answerJson(res, 0, "ok", { invaliduser: "", msgid: randomBytes(12).toString("hex") });
  }

  private mediaUpload(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse): void {
    if (req.method !== "POST") return this.answerJson(res, 43002, "require POST method");
    const file = mediaPart(body, req.headers["content-type"]);
    if (file === undefined) return this.answerJson(res, 44001, "empty media data");
    const mediaId = `up-${randomBytes(12).toString("hex")}`;
    this.media.set(mediaId, file);
    this.answerJson(res, 0, "", {
      type: url.searchParams.get("type") ?? "file",
      media_id: mediaId,
      created_at: `${Math.floor(this.now() / 1000)}`,
    });
  }

  /** Uploaded files, or "gen-SIZE" synthetic ones of any size, with Range like WeCom's. */
  private mediaGet(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const mediaId = url.searchParams.get("media_id") ?? "";
    const uploaded = this.media.get(mediaId);
    const synthetic = /^gen-(\d{1,12})$/.exec(mediaId);
    if (uploaded === undefined && synthetic === null) return this.answerJson(res, INVALID_MEDIA_ID, "invalid media_id");
    const size = uploaded?.bytes.length ?? Number(synthetic?.[1]);
    const range = parseRange(req.headers.range, size);
    const headers: Record<string, string | number> = {
      "content-type": uploaded?.contentType ?? "application/octet-stream",
      "content-disposition": `attachment; filename="${uploaded?.filename ?? `${mediaId}.bin`}"`,
      "accept-ranges": "bytes",
    };
    if (range === "unsatisfiable") {
      return void res.writeHead(416, { ...headers, "content-range": `bytes */${size}`, "content-length": 0 }).end();
    }
    const { start, end } = range ?? { start: 0, end: size };
    const partial = range === undefined ? {} : { "content-range": `bytes ${start}-${end - 1}/${size}` };
    res.writeHead(range === undefined ? 200 : 206, { ...headers, ...partial, "content-length": end - start });
    if (req.method === "HEAD") return void res.end();
    if (uploaded !== undefined) return void res.end(uploaded.bytes.subarray(start, end));
    syntheticStream(mediaId, start, end).pipe(res);
  }

  private ticket(app: FakeApp, kind: FakeTicketKind, res: ServerResponse): void {
    const outcome = this.tickets.take(app, `${app.corpid}/${app.secret}`, kind);
    if (!outcome.ok) return this.answerJson(res, outcome.errcode, outcome.errmsg);
    this.answerJson(res, 0, "ok", { ticket: outcome.ticket, expires_in: outcome.expiresIn });
  }

  private webhook(url: URL, res: ServerResponse): void {
    const key = url.searchParams.get("key") ?? "";
    const keys = this.options.webhookKeys ?? [];
    if (!keys.includes(key)) return this.answerJson(res, INVALID_WEBHOOK_KEY, "invalid webhook url");
    this.answerJson(res, 0, "ok");
  }

  /** /sandbox/… : the knobs, over HTTP for `npm run sandbox` users. */
  private control(url: URL, body: Buffer, res: ServerResponse): void {
    const reply = (value: object) => this.answerJson(res, 0, "ok", value);
    if (url.pathname.startsWith("/sandbox/callbacks/")) return void this.callbackControl(url, body, res);
    switch (url.pathname) {
      case "/sandbox/invalidate":
        return reply({ invalidated: this.invalidateTokens(url.searchParams.get("corpid") ?? undefined) });
      case "/sandbox/faults":
        try {
          this.addFault(JSON.parse(body.toString("utf8")) as Fault);
          return reply({ faults: this.faults.length });
        } catch {
          return this.answerJson(res, 47001, "sandbox: the fault must be JSON");
        }
      case "/sandbox/stats":
        return reply({
          gettoken: this.gettokenCalls,
          tickets: this.ticketCalls,
          requests: this.received.length,
          dropped: this.limits.dropped,
        });
      default:
        return this.answerJson(
          res,
          404,
          "sandbox: control endpoints are /sandbox/invalidate, /sandbox/faults, /sandbox/stats, " +
            "/sandbox/callbacks/APP/verify, /sandbox/callbacks/APP/event",
        );
    }
  }

  /**
   * POST /sandbox/callbacks/APP/verify: a URL verification to APP's callback URL.
   * POST /sandbox/callbacks/APP/event: an encrypted event; the body is the text a user sends
   * (or a whole plaintext `<xml>` message). errcode 0 when the callback URL answered 200.
   */
  private async callbackControl(url: URL, body: Buffer, res: ServerResponse): Promise<void> {
    const [, , , name = "", action = ""] = url.pathname.split("/");
    const app = this.callbacks.app(name);
    if (app === undefined || (action !== "verify" && action !== "event")) {
      const known = this.callbacks.names().join(", ") || "none configured";
      return this.answerJson(res, 404, `sandbox: use /sandbox/callbacks/APP/verify or /event; apps: ${known}`);
    }
    try {
      if (action === "verify") {
        const result = await this.callbacks.verify(name);
        return this.answerJson(res, result.verified ? 0 : result.status, result.verified ? "ok" : "not verified", {
          status: result.status,
        });
      }
      const text = body.toString("utf8").trim();
      const message = text.startsWith("<xml") ? text : textMessage({ corpid: app.receiveId, content: text || "hello" });
      const result = await this.callbacks.send(name, message);
      this.answerJson(res, result.status === 200 ? 0 : result.status, result.status === 200 ? "ok" : result.body, {
        status: result.status,
        ...(result.reply === undefined ? {} : { reply: result.reply }),
      });
    } catch (error) {
      this.answerJson(res, -1, `sandbox: the callback URL is unreachable (${(error as Error).message})`);
    }
  }

  /** WeCom's answer shape: HTTP 200, errcode and an errmsg with hint and help link. */
  private answerJson(res: ServerResponse, errcode: number, errmsg: string, fields: object = {}): void {
    const message = errcode === 0 ? errmsg || "ok" : wecomErrmsg(errcode, errmsg, res.req.socket.remoteAddress);
    const text = Buffer.from(JSON.stringify({ errcode, errmsg: message, ...fields }));
    const gzip = this.gzip && /\bgzip\b/.test(String(res.req.headers["accept-encoding"] ?? ""));
    const payload = gzip ? zlib.gzipSync(text) : text;
    res.writeHead(200, {
      "content-type": JSON_TYPE,
      "content-length": payload.length,
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    });
    res.end(payload);
  }
}

function wecomErrmsg(errcode: number, text: string, ip: string | undefined): string {
  const hint = `${Math.floor(Date.now() / 1000)}-${randomBytes(4).toString("hex")}`;
  return `${text}, hint: [${hint}], from ip: ${ip ?? "?"}, more info at https://open.work.weixin.qq.com/devtool/query?e=${errcode}`;
}

/** A JSON object body, else undefined: the rules that read bodies only read objects. */
function jsonOf(body: Buffer): unknown {
  if (body.length === 0 || body[0] !== 0x7b) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return undefined;
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
