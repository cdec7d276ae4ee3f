// Egress through a corporate forward proxy: CONNECT tunnels to WeCom, from upstream.proxy or
// from the conventional environment variables.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { startConnectProxy, type ConnectProxy } from "./helpers/connect-proxy.js";
import { getJson, request } from "./helpers/http.js";
import { ProxyProcess } from "./helpers/proxy-process.js";
import { WEBHOOK_KEY, startStack, type Stack } from "./helpers/start-stack.js";

const USER = "egress-user";
const PASSWORD = randomBytes(18).toString("base64url");
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");

const viaProxy = (proxyUrl: string) => (config: Record<string, unknown>) => {
  (config["upstream"] as Record<string, unknown>)["proxy"] = proxyUrl;
};

describe("upstream.proxy", () => {
  let egress: ConnectProxy;
  let stack: Stack | undefined;
  beforeEach(async () => {
    egress = await startConnectProxy({ user: USER, password: PASSWORD });
  });
  afterEach(async () => {
    await stack?.close();
    stack = undefined;
    await egress.close();
  });

  test("carries gettoken and the API call through a CONNECT tunnel to WeCom", async () => {
    stack = await startStack({ configure: viaProxy(egress.url) });
    const reply = await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply).toMatchObject({ errcode: 0, userid: "zhangsan" });
    const wecom = new URL(stack.sandbox.url);
    expect(new Set(egress.connects)).toEqual(new Set([`127.0.0.1:${wecom.port}`]));
    expect(stack.sandbox.requestsTo("/cgi-bin/gettoken")).toHaveLength(1);
    expect(stack.sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(1);
  });

  test("keeps its tunnels alive: later calls open no new CONNECT", async () => {
    stack = await startStack({ configure: viaProxy(egress.url) });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    // gettoken and the first call: the pool waits a turn before it reuses a connection, so the
    // call that follows gettoken at once may open a second one.
    const opened = egress.connects.length;
    expect(opened).toBeLessThanOrEqual(2);
    for (const userid of ["lisi", "zhangsan", "lisi"]) {
      expect((await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=${userid}`))["errcode"]).toBe(0);
    }
    expect(egress.connects).toHaveLength(opened);
  });

  test("never lets the proxy's credentials reach a log", async () => {
    stack = await startStack({ configure: viaProxy(egress.url) });
    await getJson(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    stack.runtime.log.info({ proxy: egress.url, url: egress.url }, "a careless line");
    const text = stack.logs.text();
    expect(text).toContain("a careless line");
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(BASIC);
  });

  test("a refused tunnel is the proxy's 502 naming the egress proxy, without its credentials", async () => {
    const wrong = egress.url.replace(PASSWORD, "wrong-password");
    stack = await startStack({ configure: viaProxy(wrong) });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/webhook/send?key=${WEBHOOK_KEY}`, {
      method: "POST",
      body: "{}",
    });
    expect(reply.status).toBe(502);
    expect(reply.json()).toEqual({
      errcode: 9502002,
      errmsg: expect.stringMatching(/egress proxy http:\/\/127\.0\.0\.1:\d+ \(with credentials\) refused .*HTTP 407/),
    });
    expect(reply.body.toString()).not.toContain("wrong-password");
    expect(stack.sandbox.received).toHaveLength(0);
    expect(stack.logs.text()).not.toContain("wrong-password");
  });

  test("a refused tunnel at gettoken is reported the same way", async () => {
    stack = await startStack({ configure: viaProxy(egress.url.replace(PASSWORD, "wrong-password")) });
    const reply = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
    expect(reply.status).toBe(502);
    expect(reply.json()["errmsg"]).toMatch(/egress proxy .* refused the tunnel to WeCom \(HTTP 407\)/);
    expect(stack.sandbox.gettokenCalls).toBe(0);
  });

  test("must be an http:// or https:// URL with no path, reported without quoting it", async () => {
    const failure = await startStack({ configure: viaProxy(`socks5://${USER}:${PASSWORD}@127.0.0.1:1080`) }).then(
      () => undefined,
      (error: Error) => error.message,
    );
    expect(failure).toMatch(/upstream\.proxy: must be http:\/\/\[user:password@\]host:port/);
    expect(failure).not.toContain(PASSWORD);
  });
});

describe("the environment's proxy variables (real process)", () => {
  const CORP = "wwegress000000001";
  const SECRET = randomBytes(24).toString("base64url");
  let dir = "";
  let sandbox: FakeWeCom;
  let egress: ConnectProxy;
  let proxy: ProxyProcess | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-egress-"));
    sandbox = new FakeWeCom({ apps: [{ corpid: CORP, secret: SECRET }] });
    await sandbox.listen();
    egress = await startConnectProxy({ user: USER, password: PASSWORD });
  });
  afterEach(async () => {
    await proxy?.kill();
    if (proxy !== undefined) expect(proxy.stdout + proxy.stderr).not.toContain(PASSWORD);
    proxy = undefined;
    await egress.close();
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function start(env: NodeJS.ProcessEnv, upstream: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(dir, "wecom-proxy.yaml");
    writeFileSync(
      file,
      stringify({
        listen: { host: "127.0.0.1", port: 0 },
        upstream: { url: sandbox.url, ...upstream },
        store: { url: "memory://" },
        corpid: CORP,
        agents: { contacts: { secret: SECRET } },
        defaultAgent: "contacts",
      }),
    );
    proxy = new ProxyProcess(file, env);
    return proxy.listening();
  }

  test("HTTP_PROXY sends the way out through the CONNECT proxy, and the log shows it without credentials", async () => {
    const url = await start({ HTTP_PROXY: egress.url });
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(new Set(egress.connects)).toEqual(new Set([`127.0.0.1:${new URL(sandbox.url).port}`]));
    const listening = proxy?.lines().find((line) => line["msg"] === "listening");
    expect(listening?.["egress"]).toBe(`http://${new URL(egress.url).host} (with credentials)`);
  });

  test("TLS to an https:// WeCom runs inside the tunnel, end to end", async () => {
    // A TLS front for the fake WeCom, with a test certificate for localhost the process trusts
    // (a host name: the tunnelling agent checks the certificate against the name it sends as SNI).
    const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
    const front = tls.createServer(
      { key: readFileSync(fixture("localhost-tls.key")), cert: readFileSync(fixture("localhost-tls.crt")) },
      (socket) => {
        const wecom = net.connect(Number(new URL(sandbox.url).port), "127.0.0.1");
        socket.pipe(wecom).pipe(socket);
        socket.on("error", () => wecom.destroy());
        wecom.on("error", () => socket.destroy());
      },
    );
    front.listen(0, "127.0.0.1");
    await once(front, "listening");
    const { port } = front.address() as AddressInfo;
    try {
      const url = await start(
        { NODE_EXTRA_CA_CERTS: fixture("localhost-tls.crt") },
        { url: `https://localhost:${port}`, proxy: egress.url },
      );
      expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
      const opened = egress.connects.length;
      for (const userid of ["lisi", "zhangsan"]) {
        expect((await getJson(`${url}/cgi-bin/user/get?userid=${userid}`))["errcode"]).toBe(0);
      }
      expect(new Set(egress.connects)).toEqual(new Set([`localhost:${port}`]));
      // Pooled: later calls go through the tunnels already open.
      expect(egress.connects).toHaveLength(opened);
      expect(sandbox.requestsTo("/cgi-bin/gettoken")).toHaveLength(1);
      expect(sandbox.requestsTo("/cgi-bin/user/get")).toHaveLength(3);
    } finally {
      await proxy?.kill();
      front.close();
    }
  });

  test("NO_PROXY naming WeCom's host keeps the way out direct", async () => {
    const url = await start({ HTTP_PROXY: egress.url, NO_PROXY: "localhost,127.0.0.1" });
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(egress.connects).toEqual([]);
    expect(proxy?.lines().find((line) => line["msg"] === "listening")?.["egress"]).toBe("direct");
  });

  test("upstream.proxy wins over HTTP_PROXY", async () => {
    const other = await startConnectProxy();
    try {
      const url = await start({ HTTP_PROXY: other.url }, { proxy: egress.url });
      expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
      expect(egress.connects.length).toBeGreaterThan(0);
      expect(other.connects).toEqual([]);
    } finally {
      await other.close();
    }
  });

  test("a proxy variable that is not a URL stops the start with one line", async () => {
    const file = path.join(dir, "bad-env.yaml");
    writeFileSync(file, stringify({ upstream: { url: sandbox.url }, corpid: CORP, agents: { a: { secret: SECRET } } }));
    proxy = new ProxyProcess(file, { HTTP_PROXY: "http://[not-a-host" });
    expect(await proxy.exited()).toEqual({ code: 2, signal: null });
    expect(proxy.stderr).toBe("wecom-proxy: the HTTP_PROXY variable is not a URL\n");
  });
});
