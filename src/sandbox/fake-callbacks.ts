// The fake WeCom's side of callbacks: it signs and encrypts (with callback-seal.ts, independent
// of the proxy's crypto) and sends URL verifications and events to a callback URL, as WeCom does.
import { randomBytes } from "node:crypto";
import http from "node:http";
import {
  openReply,
  randomNonce,
  sealEvent,
  sealVerification,
  type CallbackCredentials,
  type SealedCallback,
} from "./callback-seal.js";

export interface FakeCallbackApp extends CallbackCredentials {
  readonly name: string;
  /** The full callback URL, as entered in WeCom's admin console. */
  readonly url: string;
}

export interface CallbackExchange {
  readonly status: number;
  readonly body: string;
}

export interface VerificationResult extends CallbackExchange {
  /** The proxy answered exactly the decrypted echostr. */
  readonly verified: boolean;
}

export interface EventResult extends CallbackExchange {
  /** The passive reply's plaintext, when the proxy answered one. */
  readonly reply: string | undefined;
}

export interface TextMessage {
  readonly corpid: string;
  readonly content: string;
  readonly from?: string;
  readonly msgId?: string;
  readonly createTime?: number;
  readonly agentId?: number;
}

export class FakeCallbacks {
  private readonly apps = new Map<string, FakeCallbackApp>();

  constructor(private readonly now: () => number) {}

  configure(apps: readonly FakeCallbackApp[]): void {
    this.apps.clear();
    for (const app of apps) this.apps.set(app.name, app);
  }

  names(): string[] {
    return [...this.apps.keys()];
  }

  /** WeCom's URL verification, as when an admin saves the callback URL. */
  async verify(name: string): Promise<VerificationResult> {
    const app = this.known(name);
    const echo = String(randomBytes(8).readBigUInt64BE());
    const sealed = sealVerification(app, echo, this.timestamp());
    const answer = await send(app.url, sealed, "GET");
    return { ...answer, verified: answer.status === 200 && answer.body === echo };
  }

  /** `message` (plaintext XML) sealed and POSTed as WeCom does, at `timestamp` (default: now). */
  async send(name: string, message: string, timestamp = this.timestamp()): Promise<EventResult> {
    const app = this.known(name);
    const answer = await send(app.url, sealEvent(app, message, timestamp, randomNonce()), "POST");
    const reply = answer.status === 200 && answer.body.startsWith("<xml>") ? openReply(app, answer.body) : undefined;
    return { ...answer, reply };
  }

  app(name: string): FakeCallbackApp | undefined {
    return this.apps.get(name);
  }

  private known(name: string): FakeCallbackApp {
    const app = this.apps.get(name);
    if (app === undefined) throw new Error(`no callback app "${name}" (known: ${this.names().join(", ") || "none"})`);
    return app;
  }

  private timestamp(): string {
    return String(Math.floor(this.now() / 1000));
  }
}

/** A user's text message to an app, as WeCom delivers it (接收普通消息: text). */
export function textMessage(message: TextMessage): string {
  const createTime = message.createTime ?? Math.floor(Date.now() / 1000);
  const msgId = message.msgId ?? String(randomBytes(8).readBigUInt64BE() >> 1n);
  return (
    `<xml><ToUserName><![CDATA[${message.corpid}]]></ToUserName>` +
    `<FromUserName><![CDATA[${message.from ?? "zhangsan"}]]></FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType>` +
    `<Content><![CDATA[${message.content.replaceAll("]]>", "]]]]><![CDATA[>")}]]></Content><MsgId>${msgId}</MsgId>` +
    `<AgentID>${message.agentId ?? 1000002}</AgentID></xml>`
  );
}

function send(url: string, sealed: SealedCallback, method: "GET" | "POST"): Promise<CallbackExchange> {
  const target = new URL(url);
  target.search = sealed.query;
  return new Promise((resolve, reject) => {
    const req = http.request(
      target,
      { method, agent: false, headers: method === "POST" ? { "content-type": "text/xml" } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("error", reject);
    req.end(method === "POST" ? sealed.body : undefined);
  });
}
