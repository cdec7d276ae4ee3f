// Stacks with clients (access control) and the calls a legacy app makes: gettoken, then the API.
import { randomBytes } from "node:crypto";
import { onTestFinished } from "vitest";
import { request, type Reply, type RequestOptions } from "./http.js";
import { CORP_A, assertNoCredentialLeak, startStack, type Stack, type StackOptions } from "./start-stack.js";

export interface ClientKeys {
  readonly billing: string;
  readonly hr: string;
  readonly other: string;
}

export interface LegacyStack extends Stack {
  readonly keys: ClientKeys;
  /** Every proxy-issued token handed out so far (checked against the log at the end). */
  readonly issued: string[];
  /** GET /cgi-bin/gettoken through the proxy (under `base`, e.g. a mount). */
  gettoken(corpid: string, corpsecret: string, options?: RequestOptions & { base?: string }): Promise<Reply>;
  /** A proxy-issued token for `corpsecret`, or a failed expectation. */
  tokenFor(corpsecret: string, options?: RequestOptions & { base?: string }): Promise<string>;
}

export interface LegacyOptions extends StackOptions {
  /** The `clients:` section, given the generated keys; none: access control off. */
  readonly clients?: (keys: ClientKeys) => Record<string, unknown>;
}

/** A stack closed (and checked for leaked keys and proxy tokens) when the test finishes. */
export async function startLegacyStack(options: LegacyOptions = {}): Promise<LegacyStack> {
  const keys: ClientKeys = { billing: newKey(), hr: newKey(), other: newKey() };
  const stack = await startStack({
    ...options,
    configure: (config) => {
      if (options.clients !== undefined) config["clients"] = options.clients(keys);
      options.configure?.(config);
    },
  });
  const issued: string[] = [];
  const gettoken: LegacyStack["gettoken"] = async (corpid, corpsecret, requestOptions = {}) => {
    const query = new URLSearchParams({ corpid, corpsecret });
    const reply = await request(
      `${stack.proxyUrl}${requestOptions.base ?? ""}/cgi-bin/gettoken?${query}`,
      requestOptions,
    );
    const token = reply.json()["access_token"];
    if (typeof token === "string") issued.push(token);
    return reply;
  };
  const legacy: LegacyStack = Object.assign(stack, {
    keys,
    issued,
    gettoken,
    async tokenFor(corpsecret: string, requestOptions?: RequestOptions & { base?: string }) {
      const reply = await gettoken(CORP_A, corpsecret, requestOptions);
      const token = reply.json()["access_token"];
      if (typeof token !== "string") throw new Error(`gettoken failed: ${reply.body.toString()}`);
      return token;
    },
  });
  const close = stack.close.bind(stack);
  onTestFinished(async () => {
    await close();
    assertNoCredentialLeak(stack.logs.text(), [...Object.values(keys), ...issued]);
  });
  return legacy;
}

export function newKey(): string {
  return randomBytes(24).toString("base64url");
}

/** The access_token values that reached the fake WeCom. */
export function tokensSeenUpstream(stack: Stack): string[] {
  return stack.sandbox.received.flatMap((r) => new URLSearchParams(r.rawQuery).getAll("access_token"));
}
