// Callback configuration for startStack(), and WeCom's side of the exchange sealed with the
// independent implementation (node:crypto, WeCom's published algorithm), never the proxy's.
import { randomBytes } from "node:crypto";
import { sealEvent, sealVerification, type CallbackCredentials } from "../../src/sandbox/callback-seal.js";
import { textMessage } from "../../src/sandbox/fake-callbacks.js";
import { request, type Reply } from "./http.js";
import { CORP_A, type Stack } from "./start-stack.js";

export const CALLBACK_PATH = "/wecom/callback/notify";

export function newEncodingAESKey(): string {
  return randomBytes(32).toString("base64").slice(0, 43);
}

/** The credentials a test's WeCom and proxy share. */
export function newCallbackCredentials(): CallbackCredentials {
  return { token: randomBytes(12).toString("base64url"), encodingAESKey: newEncodingAESKey(), receiveId: CORP_A };
}

export interface CallbackSetup {
  readonly credentials: CallbackCredentials;
  readonly targets: readonly { url: string; format?: "xml" | "json" }[];
  readonly app?: Record<string, unknown>;
  readonly callbacks?: Record<string, unknown>;
}

/** A `configure` for startStack() adding one callback app, "notify", at CALLBACK_PATH. */
export function withCallbacks(setup: CallbackSetup): (config: Record<string, unknown>) => void {
  return (config) => {
    config["callbacks"] = {
      listen: { host: "127.0.0.1", port: 0 },
      ...setup.callbacks,
      apps: {
        notify: {
          path: CALLBACK_PATH,
          token: setup.credentials.token,
          encodingAESKey: setup.credentials.encodingAESKey,
          targets: setup.targets,
          ...setup.app,
        },
      },
    };
  };
}

export function callbackUrl(stack: Stack, path = CALLBACK_PATH): string {
  if (stack.callbacks === undefined) throw new Error("the stack has no callback listener");
  return `${stack.callbacks.url}${path}`;
}

/** The stack's clock, in WeCom's seconds. */
export function nowSeconds(stack: Stack): string {
  return String(Math.floor(stack.clock.now() / 1000));
}

/** POSTs `message` to the callback URL as WeCom would. */
export function postEvent(
  stack: Stack,
  credentials: CallbackCredentials,
  message: string,
  timestamp = nowSeconds(stack),
): Promise<Reply> {
  const sealed = sealEvent(credentials, message, timestamp);
  return request(`${callbackUrl(stack)}?${sealed.query}`, { method: "POST", body: sealed.body });
}

/** GETs the callback URL with a URL verification as WeCom would; `echo` is what must come back. */
export function getVerification(stack: Stack, credentials: CallbackCredentials, echo: string): Promise<Reply> {
  const sealed = sealVerification(credentials, echo, nowSeconds(stack));
  return request(`${callbackUrl(stack)}?${sealed.query}`);
}

/** A text message from zhangsan with its own MsgId. */
export function text(content: string, msgId?: string): string {
  return textMessage({ corpid: CORP_A, content, msgId, createTime: 1_700_000_000 });
}
