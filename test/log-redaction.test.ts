// Redaction lives in the logger's configuration: checked by value, with real secrets and real
// tokens, in JSON and in the human-readable format a terminal gets.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { describe, expect, test as plainTest } from "vitest";
import { stringify } from "yaml";
import { Secret } from "../src/config/secret.js";
import { createLogger, prettyDestination, wantsPretty } from "../src/log.js";
import { getJson } from "./helpers/http.js";
import { LogCapture } from "./helpers/log-capture.js";
import { ProxyProcess } from "./helpers/proxy-process.js";
import { test, type Stack } from "./helpers/start-stack.js";

const ADMIN_KEY = randomBytes(24).toString("base64url");
const PROXY_PASSWORD = randomBytes(18).toString("base64url");

/** Collects text as it comes (human-readable lines are not JSON). */
class TextCapture extends Writable {
  text = "";
  private readonly waiters = new Set<() => void>();

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString("utf8");
    for (const wake of this.waiters) wake();
    done();
  }

  contains(text: string): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.text.includes(text)) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** Every way a careless call site could hand a credential to the logger. */
function carelessFields(stack: Stack, token: string) {
  const secret = stack.secrets.contacts;
  return {
    url: `/cgi-bin/gettoken?corpid=ww1&corpsecret=${secret}&access_token=${token}`,
    proxy: `http://egress:${PROXY_PASSWORD}@egress.corp:3128`,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      "proxy-authorization": `Basic ${Buffer.from(`egress:${PROXY_PASSWORD}`).toString("base64")}`,
      cookie: `session=${token}`,
    },
    secret,
    token,
    key: ADMIN_KEY,
    access_token: token,
    corpsecret: secret,
    agent: { name: "contacts", secret, token },
    lease: { token, obtainedAt: 1, expiresAt: 2 },
    password: PROXY_PASSWORD,
    req: { headers: { authorization: `Bearer ${ADMIN_KEY}` } },
    wrapped: new Secret(secret),
  };
}

function credentialsOf(stack: Stack): string[] {
  return [...Object.values(stack.secrets), ...stack.sandbox.issuedTokens(), ADMIN_KEY, PROXY_PASSWORD];
}

async function realToken(stack: Stack): Promise<string> {
  await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
  const [token] = stack.sandbox.issuedTokens();
  if (token === undefined) throw new Error("the sandbox issued no token");
  return token;
}

describe("the logger's redaction", () => {
  test("removes every credential value from a JSON line and keeps the rest", async ({ stack }) => {
    const capture = new LogCapture();
    createLogger("info", capture).info(carelessFields(stack, await realToken(stack)), "careless");
    const text = capture.text();
    for (const credential of credentialsOf(stack)) expect(text).not.toContain(credential);
    const [line] = capture.lines();
    expect(line).toMatchObject({
      msg: "careless",
      url: "/cgi-bin/gettoken?corpid=ww1&corpsecret=[redacted]&access_token=[redacted]",
      proxy: "http://[redacted]@egress.corp:3128",
      headers: { authorization: "[redacted]", "proxy-authorization": "[redacted]", cookie: "[redacted]" },
      secret: "[redacted]",
      agent: { name: "contacts", secret: "[redacted]", token: "[redacted]" },
      lease: { token: "[redacted]", obtainedAt: 1 },
      req: { headers: { authorization: "[redacted]" } },
      wrapped: "[secret]",
    });
  });

  test("removes them from the human-readable format too", async ({ stack }) => {
    const capture = new TextCapture();
    const log = createLogger("info", await prettyDestination(capture));
    log.info(carelessFields(stack, await realToken(stack)), "careless");
    await capture.contains("careless");
    const { text } = capture;
    expect(text).toMatch(/INFO.*careless/);
    expect(text.trimStart().startsWith("{")).toBe(false);
    for (const credential of credentialsOf(stack)) expect(text).not.toContain(credential);
  });
});

describe("the log format", () => {
  plainTest("auto is human-readable at a terminal and JSON lines otherwise; json and pretty are fixed", () => {
    expect([wantsPretty("auto", true), wantsPretty("auto", false)]).toEqual([true, false]);
    expect([wantsPretty("json", true), wantsPretty("pretty", false)]).toEqual([false, true]);
  });

  plainTest.each([
    ["json", false],
    ["auto", false],
    ["pretty", true],
  ] as const)("with format %s, pino-pretty is loaded: %s", (format, loaded) => {
    // A process of its own: this one has loaded pino-pretty already. pino-pretty is CommonJS,
    // so once imported it is in require.cache.
    const script = `
      import { createRequire } from "node:module";
      import { stdoutDestination } from "./dist/src/log.js";
      await stdoutDestination(${JSON.stringify(format)}, false);
      const cache = Object.keys(createRequire(import.meta.url).cache);
      process.stderr.write(String(cache.some((file) => file.includes("/node_modules/pino-pretty/"))));
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(child.stderr).toBe(String(loaded));
  });

  plainTest("pretty makes a real process print readable lines instead of JSON", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-pretty-"));
    const file = path.join(dir, "pretty.yaml");
    writeFileSync(
      file,
      stringify({
        listen: { host: "127.0.0.1", port: 0 },
        upstream: { url: "http://127.0.0.1:9" },
        store: { url: "memory://" },
        log: { level: "info", format: "pretty" },
        corpid: "wwpretty",
        agents: { a: { secret: "pretty-secret-0f3a" } },
      }),
    );
    const proxy = new ProxyProcess(file);
    try {
      await proxy.waitForText("listening");
      expect(proxy.stdout).toMatch(/INFO.*listening/);
      expect(proxy.lines()).toEqual([]);
      proxy.signal("SIGTERM");
      expect(await proxy.exited()).toEqual({ code: 0, signal: null });
      expect(proxy.stdout).not.toContain("pretty-secret-0f3a");
    } finally {
      await proxy.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
