import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson, request } from "./helpers/http.js";
import { TestClock } from "./helpers/test-clock.js";

const sh = promisify(execFile);

describe("the fake WeCom keeps WeCom's rules", () => {
  const clock = new TestClock();
  const app = { corpid: "wwfake", secret: "fake-secret", agentid: 1000002 };
  let wecom: FakeWeCom;
  const gettoken = (query: string) =>
    getJson<{ errcode: number; access_token?: string; expires_in?: number }>(`${wecom.url}/cgi-bin/gettoken?${query}`);

  beforeEach(async () => {
    wecom = new FakeWeCom({ apps: [app], tokenLifetimeSeconds: 7200, now: clock.now });
    await wecom.listen();
  });
  afterEach(() => wecom.close());

  test("gettoken returns the same token while it is valid, and a new one after", async () => {
    const first = await gettoken("corpid=wwfake&corpsecret=fake-secret");
    expect(first).toMatchObject({ errcode: 0, errmsg: "ok", expires_in: 7200 });
    clock.advance(1000 * 1000);
    const same = await gettoken("corpid=wwfake&corpsecret=fake-secret");
    expect(same.access_token).toBe(first.access_token);
    expect(same.expires_in).toBe(6200);
    clock.advance(6200 * 1000);
    expect((await gettoken("corpid=wwfake&corpsecret=fake-secret")).access_token).not.toBe(first.access_token);
  });

  test("gettoken answers WeCom's errcodes for missing and wrong credentials", async () => {
    expect((await gettoken("corpsecret=fake-secret")).errcode).toBe(41002);
    expect((await gettoken("corpid=wwfake")).errcode).toBe(41004);
    expect((await gettoken("corpid=wwother&corpsecret=fake-secret")).errcode).toBe(40013);
    expect((await gettoken("corpid=wwfake&corpsecret=wrong")).errcode).toBe(40001);
  });

  test("API calls answer 41001 without a token, 40014 for a bad or invalidated one, 42001 for an expired one", async () => {
    const { access_token: token } = await gettoken("corpid=wwfake&corpsecret=fake-secret");
    const userGet = (query: string) => getJson(`${wecom.url}/cgi-bin/user/get?userid=zhangsan${query}`);
    expect((await userGet(""))["errcode"]).toBe(41001);
    expect((await userGet("&access_token=made-up"))["errcode"]).toBe(40014);
    expect((await userGet(`&access_token=${token}`))["errcode"]).toBe(0);
    clock.advance(7200 * 1000);
    expect((await userGet(`&access_token=${token}`))["errcode"]).toBe(42001);
    const { access_token: fresh } = await gettoken("corpid=wwfake&corpsecret=fake-secret");
    wecom.invalidateTokens();
    const answer = await userGet(`&access_token=${fresh}`);
    expect(answer["errcode"]).toBe(40014);
    expect(answer["errmsg"]).toMatch(
      /^invalid access_token, hint: \[.+\], from ip: .+, more info at https:\/\/open\.work\.weixin\.qq\.com\/devtool\/query\?e=40014$/,
    );
  });

  test("message/send refuses an agentid that is not the token's app", async () => {
    const { access_token: token } = await gettoken("corpid=wwfake&corpsecret=fake-secret");
    const send = (agentid: number) =>
      getJson(`${wecom.url}/cgi-bin/message/send?access_token=${token}`, {
        method: "POST",
        body: JSON.stringify({ touser: "lisi", msgtype: "text", agentid, text: { content: "x" } }),
      });
    expect((await send(1000002))["errcode"]).toBe(0);
    expect((await send(1000009))["errcode"]).toBe(301002);
  });

  test("the control endpoints invalidate tokens, queue faults and count calls over HTTP", async () => {
    await gettoken("corpid=wwfake&corpsecret=fake-secret");
    expect(await getJson(`${wecom.url}/sandbox/invalidate`, { method: "POST", body: "" })).toMatchObject({
      invalidated: 1,
    });
    await getJson(`${wecom.url}/sandbox/faults`, {
      method: "POST",
      body: JSON.stringify({ path: "/cgi-bin/gettoken", errcode: -1 }),
    });
    expect((await gettoken("corpid=wwfake&corpsecret=fake-secret")).errcode).toBe(-1);
    expect(await getJson(`${wecom.url}/sandbox/stats`)).toMatchObject({ gettoken: 2 });
  });
});

describe("the fake WeCom answers every API path the way WeCom does", () => {
  const app = { corpid: "wwfake", secret: "fake-secret", agentid: 1000002 };
  let wecom: FakeWeCom;
  let token = "";
  const call = (path: string) => request(`${wecom.url}${path}${path.includes("?") ? "&" : "?"}access_token=${token}`);

  beforeEach(async () => {
    wecom = new FakeWeCom({ apps: [app] });
    await wecom.listen();
    token = String(
      (await getJson(`${wecom.url}/cgi-bin/gettoken?corpid=wwfake&corpsecret=fake-secret`))["access_token"],
    );
  });
  afterEach(() => wecom.close());

  test("agent/get describes the token's app, as SDKs expect when they connect", async () => {
    const reply = await call("/cgi-bin/agent/get?agentid=1000002");
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({
      errcode: 0,
      agentid: 1000002,
      name: expect.any(String),
      allow_userinfos: { user: expect.any(Array) },
      close: 0,
    });
    expect((await call("/cgi-bin/agent/get?agentid=1000009")).json()["errcode"]).toBe(301002);
  });

  test("agent/list lists the token's app", async () => {
    expect((await call("/cgi-bin/agent/list")).json()).toMatchObject({
      errcode: 0,
      agentlist: [{ agentid: 1000002, name: expect.any(String) }],
    });
  });

  test("a documented API it does not model answers success, never HTTP 404", async () => {
    for (const path of ["/cgi-bin/menu/get?agentid=1000002", "/cgi-bin/user/simplelist?department_id=1"]) {
      const reply = await call(path);
      expect(reply.status, path).toBe(200);
      expect(reply.json()["errcode"], path).toBe(0);
    }
    expect((await call("/cgi-bin/user/simplelist?department_id=1")).json()["userlist"]).toContainEqual(
      expect.objectContaining({ userid: "zhangsan" }),
    );
  });

  test("an unknown /cgi-bin/ path is HTTP 200 with 48001, after the token check", async () => {
    const reply = await call("/cgi-bin/no/such/api");
    expect(reply.status).toBe(200);
    expect(reply.json()).toMatchObject({ errcode: 48001, errmsg: expect.stringMatching(/^api unauthorized, hint: /) });
    expect((await request(`${wecom.url}/cgi-bin/no/such/api`)).json()["errcode"]).toBe(41001);
  });

  test("a path outside /cgi-bin/ is the web server's HTML 404 page", async () => {
    const reply = await request(`${wecom.url}/not-an-api`);
    expect(reply.status).toBe(404);
    expect(reply.headers["content-type"]).toBe("text/html");
  });
});

/** The banner's commands as a user pastes them: a line starting "  curl " or "  NAME=", with its continuations. */
function printedCommands(banner: string): string[] {
  const commands: string[] = [];
  let open: string[] | undefined;
  for (const line of banner.split("\n")) {
    if (open === undefined && !/^ {2}(curl |[A-Z]+=)/.test(line)) continue;
    open = [...(open ?? []), line];
    if (line.endsWith("\\")) continue;
    commands.push(open.join("\n").trim());
    open = undefined;
  }
  return commands;
}

const SEPARATOR = "--- next command ---";

/** Runs the commands in one shell, one after the other as a terminal would; each one's output. */
async function runInOneShell(commands: readonly string[]): Promise<string[]> {
  const script = commands.map((command) => `${command}\necho; echo '${SEPARATOR}'`).join("\n");
  const { stdout } = await sh("sh", ["-c", script], { timeout: 20_000 });
  return stdout
    .split(`${SEPARATOR}\n`)
    .slice(0, commands.length)
    .map((out) => out.replace(/\n+$/, ""));
}

describe("npm run sandbox", () => {
  const run = (args: readonly string[]) =>
    spawn(process.execPath, ["dist/src/sandbox/run.js", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });

  test("prints curl commands that work as printed, within 100 columns, including the token recovery", async () => {
    const child = run(["--port", "0", "--wecom-port", "0", "--callbacks-port", "0", "--target-port", "0"]);
    try {
      let stdout = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => (stdout += chunk));
      const waitForOutput = async (text: string) => {
        while (!stdout.includes(text)) {
          const [chunk] = (await Promise.race([once(child.stdout, "data"), once(child, "exit")])) as [unknown];
          if (typeof chunk !== "string") throw new Error(`the sandbox exited: ${stdout}`);
        }
      };
      await waitForOutput("Ctrl-C stops them all");
      const banner = stdout.slice(0, stdout.indexOf("Ctrl-C stops them all"));
      const wide = banner.split("\n").filter((line) => line.length > 100);
      expect(wide).toEqual([]);
      const commands = printedCommands(banner);
      expect(commands.length).toBeGreaterThanOrEqual(10);
      const outputs = await runInOneShell(commands);
      const answers = outputs
        .filter((out) => out.startsWith("{"))
        .map((out) => JSON.parse(out) as Record<string, unknown>);
      expect(answers.every((answer) => answer["errcode"] === 0)).toBe(true);
      expect(outputs).toContain("200 1048576 bytes");
      // gettoken with an app's secret printed a wxp_ token, and the call that sent it succeeded.
      const gettoken = commands.findIndex((command) => command.startsWith("TOKEN="));
      expect(outputs[gettoken]).toMatch(/^wxp_[A-Za-z0-9_-]{43,}$/);
      expect(JSON.parse(outputs[gettoken + 1] ?? "{}")).toMatchObject({ errcode: 0, userid: "lisi" });
      // contacts, notify, and one after the invalidation; the wxp_ token cost WeCom nothing.
      expect(answers).toContainEqual(expect.objectContaining({ gettoken: 3 }));
      expect(answers.at(-1)).toMatchObject({ faults: 1 });
      // The callback commands: verified, and the event printed by the local target.
      expect(answers).toContainEqual(expect.objectContaining({ errcode: 0, status: 200 }));
      await waitForOutput('"Content":"hello from WeCom"');
      expect(stdout).toMatch(/\[target\] POST \/wecom\/events app=notify event=[0-9a-f]{32}/);
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });

  test("--help lists its options on stdout", async () => {
    const { stdout } = await sh(process.execPath, ["dist/src/sandbox/run.js", "--help"]);
    for (const option of ["--config", "--port", "--wecom-port", "--callbacks-port", "--target-port"]) {
      expect(stdout).toContain(option);
    }
  });

  test("a port in use is one line naming the option that moves it, and exit status 2", async () => {
    const busy = http.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const child = run(["--port", "0", "--wecom-port", String(port), "--callbacks-port", "0", "--target-port", "0"]);
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const [code] = (await once(child, "exit")) as [number];
      expect(code).toBe(2);
      expect(stderr.split("\n").filter(Boolean)).toEqual([
        `sandbox: the fake WeCom cannot listen on port ${port} (in use): move it with --wecom-port N (0: any free port)`,
      ]);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});
