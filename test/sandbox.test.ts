import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson } from "./helpers/http.js";
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

describe("npm run sandbox", () => {
  test("prints curl commands that work as printed, including the token recovery", async () => {
    const ports = ["--port", "0", "--wecom-port", "0", "--callbacks-port", "0", "--target-port", "0"];
    const child = spawn(process.execPath, ["dist/src/sandbox/run.js", ...ports], {
      stdio: ["ignore", "pipe", "pipe"],
    });
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
      const commands = stdout
        .split("\n")
        .filter((line) => line.startsWith("  curl "))
        .map((line) => line.trim());
      expect(commands.length).toBeGreaterThanOrEqual(7);
      const outputs: string[] = [];
      for (const command of commands) outputs.push((await sh("sh", ["-c", command], { timeout: 10_000 })).stdout);
      const answers = outputs
        .filter((out) => out.startsWith("{"))
        .map((out) => JSON.parse(out) as Record<string, unknown>);
      expect(answers.every((answer) => answer["errcode"] === 0)).toBe(true);
      expect(outputs).toContain("200 1048576 bytes\n");
      expect(answers.at(-1)).toMatchObject({ gettoken: 4 }); // notify, contacts, crm (by family), one after the invalidation
      // The callback commands: verified, and the event printed by the local target.
      expect(answers).toContainEqual(expect.objectContaining({ errcode: 0, status: 200 }));
      await waitForOutput('"Content":"hello from WeCom"');
      expect(stdout).toMatch(/\[target\] POST \/wecom\/events app=notify event=[0-9a-f]{32}/);
    } finally {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });
});
