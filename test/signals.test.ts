// SIGTERM, SIGINT and SIGHUP sent to a real proxy process in front of the in-process fake WeCom.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson, request } from "./helpers/http.js";
import { parseMetrics, valueOf } from "./helpers/prometheus.js";
import { ProxyProcess, within } from "./helpers/proxy-process.js";
import { assertNoCredentialLeak } from "./helpers/start-stack.js";

const CORP = "wwsignals00000001";
const SECRET = randomBytes(24).toString("base64url");

let dir = "";
let sandbox: FakeWeCom;
let proxy: ProxyProcess | undefined;
const releases: Array<() => void> = [];

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-signals-"));
  sandbox = new FakeWeCom({ apps: [{ corpid: CORP, secret: SECRET }] });
  await sandbox.listen();
});

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await proxy?.kill();
  if (proxy !== undefined) assertNoCredentialLeak(proxy.stdout + proxy.stderr, [SECRET, ...sandbox.issuedTokens()]);
  proxy = undefined;
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: sandbox.url, timeoutMs: 8000 },
    store: { url: "memory://" },
    corpid: CORP,
    agents: { contacts: { secret: SECRET } },
    defaultAgent: "contacts",
    ...extra,
  };
}

function writeConfig(value: Record<string, unknown> | string): string {
  const file = path.join(dir, "wecom-proxy.yaml");
  writeFileSync(file, typeof value === "string" ? value : stringify(value));
  return file;
}

async function startProxy(value: Record<string, unknown>): Promise<string> {
  proxy = new ProxyProcess(writeConfig(value));
  return proxy.listening();
}

/** A request whose answer WeCom holds back until released; resolves once WeCom has it. */
async function heldRequest(url: string) {
  let release = () => {};
  sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
  releases.push(release);
  const arrived = once(sandbox.events, "request");
  const reply = request(`${url}/cgi-bin/user/get?userid=zhangsan`);
  reply.catch(() => undefined); // awaited by the test; this only keeps an early failure from going unhandled
  await within(arrived, "the held request to reach WeCom");
  return { reply, release };
}

/** Sends SIGTERM and waits until the proxy says it is shutting down. */
async function sigterm(): Promise<void> {
  proxy?.signal("SIGTERM");
  await proxy?.waitForLine((line) => line["msg"] === "shutting down", '"shutting down"');
}

describe("SIGTERM", () => {
  test("during a slow upstream answer still delivers that answer, then exits 0", async () => {
    const url = await startProxy(config());
    const held = await heldRequest(url);
    await sigterm();
    held.release();
    const reply = await within(held.reply, "the held answer");
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({ errcode: 0, userid: "zhangsan" });
    expect(await proxy?.exited()).toEqual({ code: 0, signal: null });
  });

  test("stops accepting new connections at once", async () => {
    const url = await startProxy(config());
    const held = await heldRequest(url);
    await sigterm();
    const refused = await request(`${url}/-/healthy`).then(
      (reply) => reply.status,
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(refused).toBe("ECONNREFUSED");
    held.release();
    await within(held.reply, "the held answer");
  });

  test("cuts what still runs after shutdownGraceMs and exits 0", async () => {
    const url = await startProxy(config({ shutdownGraceMs: 200 }));
    const held = await heldRequest(url);
    proxy?.signal("SIGTERM");
    const outcome = await within(
      held.reply.then(
        (reply) => reply.status,
        (error: NodeJS.ErrnoException) => error.code,
      ),
      "the held request to be cut",
    );
    expect(outcome).toBe("ECONNRESET");
    expect(await proxy?.exited()).toEqual({ code: 0, signal: null });
  });

  test("answers a request that arrives on a busy connection meanwhile, then closes that connection", async () => {
    const url = new URL(await startProxy(config()));
    let release = () => {};
    sandbox.addFault({ path: "/cgi-bin/user/get", until: new Promise<void>((resolve) => (release = resolve)) });
    releases.push(release);
    const socket = net.connect(Number(url.port), "127.0.0.1");
    let received = "";
    socket.setEncoding("utf8").on("data", (chunk: string) => (received += chunk));
    const closed = once(socket, "close");
    const arrived = once(sandbox.events, "request");
    socket.write("GET /cgi-bin/user/get?userid=zhangsan HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await within(arrived, "the held request to reach WeCom");
    await sigterm();
    socket.write("GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    release();
    await within(closed, "the connection to close");
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((answer) => answer.slice(0, 12))).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(answers[1]).toMatch(/\r\nConnection: close\r\n/i);
    expect(await proxy?.exited()).toEqual({ code: 0, signal: null });
  });

  test("a second SIGTERM during the drain ends the process at once with status 1", async () => {
    const url = await startProxy(config());
    const held = await heldRequest(url);
    await sigterm();
    proxy?.signal("SIGTERM");
    expect(await proxy?.exited()).toEqual({ code: 1, signal: null });
    await expect(held.reply).rejects.toThrow();
  });
});

describe("SIGINT", () => {
  test("stops the proxy the same way, exit 0", async () => {
    const url = await startProxy(config());
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    proxy?.signal("SIGINT");
    expect(await proxy?.exited()).toEqual({ code: 0, signal: null });
  });
});

describe("SIGHUP", () => {
  test("with a valid new config: new requests use it and a request in flight is not dropped", async () => {
    const url = await startProxy(config());
    const held = await heldRequest(url);
    writeConfig(config({ agents: { contacts: { secret: SECRET }, directory: { secret: SECRET } } }));
    proxy?.signal("SIGHUP");
    await proxy?.waitForLine((line) => line["msg"] === "config reloaded", '"config reloaded"');
    const viaNewAgent = await getJson(`${url}/cgi-bin/department/list`, { headers: { "x-wecom-agent": "directory" } });
    expect(viaNewAgent["errcode"]).toBe(0);
    held.release();
    const reply = await within(held.reply, "the held answer");
    expect(reply.status).toBe(200);
    expect(reply.json()["errcode"]).toBe(0);
    // Same store, same (corpid, secret): the cached token carried over.
    expect(sandbox.gettokenCalls).toBe(1);
  });

  test("with a broken config: one log line per problem, and the old config keeps serving", async () => {
    const url = await startProxy(config());
    writeConfig(`${stringify(config())}agnets: {}\nshutdownGraceMs: soon\n`);
    proxy?.signal("SIGHUP");
    const problems = await Promise.all(
      ["agnets", "shutdownGraceMs"].map(
        async (field) =>
          (await proxy?.waitForLine(
            (line) => line["msg"] === "config reload rejected" && String(line["problem"]).startsWith(`${field}: `),
            `the problem with ${field}`,
          )) ?? {},
      ),
    );
    expect(problems.map((line) => line["level"])).toEqual([50, 50]);
    const logged = (await proxy?.loggedLines()) ?? [];
    expect(logged.filter((line) => line["msg"] === "config reload rejected")).toHaveLength(2);
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    const samples = parseMetrics((await request(`${url}/-/metrics`)).body.toString("utf8"));
    expect(valueOf(samples, "wecom_proxy_config_reload_failures_total")).toBe(1);
  });
});
