// DESIGN §2: the command line, over real processes. Needs `npm run build` (npm test runs it first).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { sealVerification } from "../src/sandbox/callback-seal.js";
import { request, type Reply } from "./helpers/http.js";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
/** Every wait is bounded: a hung process fails its test instead of the whole run. */
const WAIT_MS = 15_000;
const SECRET = "cli-test-secret-5c1d8e0b7a";

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `node dist/src/cli/main.js` process, its output so far, and its exit. */
class Cli {
  stdout = "";
  stderr = "";
  readonly exit: Promise<Exit>;
  private readonly child: ChildProcess;

  constructor(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? cliEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exit = new Promise((resolve, reject) => {
      this.child.once("error", reject);
      this.child.once("close", (code, signal) => resolve({ code, signal }));
    });
  }

  get stderrLines(): string[] {
    return this.stderr.split("\n").filter((line) => line !== "");
  }

  /** Its exit; rejects (and kills it) if it is still running after WAIT_MS. */
  async exited(): Promise<Exit> {
    try {
      return await within(this.exit, `the process to exit (stdout: ${this.stdout}, stderr: ${this.stderr})`);
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  /** The first JSON line on stdout whose msg is `msg` (and that `where` accepts). */
  logLine(
    msg: string,
    where: (entry: Record<string, unknown>) => boolean = () => true,
  ): Promise<Record<string, unknown>> {
    const find = () =>
      this.stdout
        .split("\n")
        .flatMap((line) =>
          line.startsWith("{") && line.endsWith("}") ? [JSON.parse(line) as Record<string, unknown>] : [],
        )
        .find((entry) => entry["msg"] === msg && where(entry));
    const found = new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const entry = find();
        if (entry === undefined) return;
        this.child.stdout?.off("data", check);
        resolve(entry);
      };
      this.child.stdout?.on("data", check);
      void this.exit.then(() => reject(new Error(`exited before logging "${msg}": ${this.stderr}`)));
      check();
    });
    return within(found, `a "${msg}" line on stdout (stdout: ${this.stdout}, stderr: ${this.stderr})`);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Teardown: kills this process if it still runs. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exit.catch(() => undefined);
    }
  }
}

/** Runs the CLI until it exits on its own. */
async function runToExit(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const cli = new Cli(args, options);
  const exit = await cli.exited();
  return { exit, stdout: cli.stdout, stderr: cli.stderr, stderrLines: cli.stderrLines };
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The test run's environment, without the variables that would change what the CLI reads. */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env["WECOM_PROXY_CONFIG"];
  delete env["LOG_LEVEL"];
  return { ...env, ...extra };
}

let dir = "";
beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  dir = mkdtempSync(path.join(tmpdir(), "wecom-proxy-cli-"));
});
afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, yaml: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

const VALID = `
listen: { host: 127.0.0.1, port: 0 }
upstream: { url: "http://127.0.0.1:9" }
store: { url: "memory://" }
log: { level: trace }
corpid: wwclitest0001
agents:
  contacts: { secret: ${SECRET} }
`;

/** What the CLI prints before each config problem. */
const configPrefix = (file: string) => `wecom-proxy: config ${file}: `;

describe("a broken configuration", () => {
  let file = "";
  let run: Awaited<ReturnType<typeof runToExit>>;

  beforeAll(async () => {
    file = writeConfig(
      "broken.yaml",
      `
listen: { port: 70000 }
upstream: { url: "ftp://qyapi.weixin.qq.com" }
corpid: "\${WECOM_PROXY_TEST_UNSET_CORPID}"
agnets: {}
agents:
  contacts: { secret: ${SECRET} }
routes:
  - { path: /cgi-bin/user/, agent: nobody }
`,
    );
    run = await runToExit(["--config", file, "--host", "127.0.0.1", "--port", "0"]);
  });

  test("makes the process exit non-zero", () => {
    expect(run.exit.signal).toBe(null);
    expect(run.exit.code).not.toBe(0);
  });

  test("stops it before it listens", () => {
    expect(run.stdout).not.toContain("listening");
  });

  test("is reported one line per problem, each naming its field", () => {
    const fields = run.stderrLines.slice(0, -1).map((line) => {
      expect(line.startsWith(configPrefix(file)), line).toBe(true);
      const problem = line.slice(configPrefix(file).length);
      return problem.slice(0, problem.indexOf(": "));
    });
    expect(fields.sort()).toEqual(["agnets", "corpid", "listen.port", "routes.0.agent", "upstream.url"]);
  });

  test("with an unset variable, ends with one line pointing at the sandbox", () => {
    expect(run.stderrLines.at(-1)).toMatch(/^wecom-proxy: .*`npm run sandbox`/);
  });

  test("is reported without a stack trace", () => {
    expect(run.stderr).not.toContain("    at ");
  });

  test("is reported without the secret", () => {
    expect(`${run.stdout}${run.stderr}`).not.toContain(SECRET);
  });
});

describe("command-line flags and the config file's name", () => {
  test("--help prints the options, the environment, the default config and where the docs are, on stdout", async () => {
    const run = await runToExit(["--help"]);
    expect(run.exit.code).toBe(0);
    expect(run.stderr).toBe("");
    for (const text of ["--config", "--host", "--port", "--pid-file", "--version", "WECOM_PROXY_CONFIG", "LOG_LEVEL"]) {
      expect(run.stdout).toContain(text);
    }
    expect(run.stdout).toContain("config/wecom-proxy.yaml");
    expect(run.stdout).toContain("npm run sandbox");
    const docs = /^docs: (.+)$/m.exec(run.stdout)?.[1] ?? "";
    expect(existsSync(docs), `${docs} exists`).toBe(true);
    const lines = run.stdout.split("\n").filter((line) => !line.startsWith("docs: "));
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(100);
  });

  test("--version prints the package's version on stdout", async () => {
    const run = await runToExit(["--version"]);
    expect(run.exit.code).toBe(0);
    expect(run.stdout).toMatch(/^wecom-proxy \d+\.\d+\.\d+\n$/);
  });

  test("a $WECOM_PROXY_PORT that is no port is a one-line error naming it", async () => {
    const file = writeConfig("env-port.yaml", VALID);
    const run = await runToExit(["--config", file], { env: cliEnv({ WECOM_PROXY_PORT: "http" }) });
    expect(run.exit.code).toBe(2);
    expect(run.stderrLines).toEqual(['wecom-proxy: $WECOM_PROXY_PORT: "http" is not a port number']);
  });

  test("--port abc is a one-line error and a non-zero exit", async () => {
    const file = writeConfig("port-abc.yaml", VALID);
    const run = await runToExit(["--config", file, "--host", "127.0.0.1", "--port", "abc"]);
    expect(run.exit.code).not.toBe(0);
    expect(run.exit.code).not.toBe(null);
    expect(run.stderrLines).toEqual([expect.stringMatching(/^wecom-proxy: .*--port.*abc/)]);
  });

  test("a $LOG_LEVEL that is no log level is a one-line error and exit status 2, before listening", async () => {
    const file = writeConfig("log-level.yaml", VALID);
    const run = await runToExit(["--config", file, "--host", "127.0.0.1", "--port", "0"], {
      env: cliEnv({ LOG_LEVEL: "loud" }),
    });
    expect(run.exit.code).toBe(2);
    expect(run.stderrLines).toEqual([
      'wecom-proxy: $LOG_LEVEL: "loud" is not one of fatal, error, warn, info, debug, trace, silent',
    ]);
    expect(run.stdout).not.toContain("listening");
  });

  test("an unknown flag is a one-line error naming it, at most followed by the usage, and a non-zero exit", async () => {
    const file = writeConfig("flag.yaml", VALID);
    const run = await runToExit(["--config", file, "--host", "127.0.0.1", "--port", "0", "--verbose"]);
    expect(run.exit.code).not.toBe(0);
    expect(run.exit.code).not.toBe(null);
    const [error, ...rest] = run.stderrLines;
    expect(error).toMatch(/^wecom-proxy: .*--verbose/);
    expect(rest.filter((line) => !line.startsWith("usage: "))).toEqual([]);
    expect(run.stderr).not.toContain("    at ");
  });

  test("$WECOM_PROXY_CONFIG selects the file when --config is absent", async () => {
    const fromEnv = writeConfig("env-only.yaml", `${VALID}onlyInEnvFile: 1\n`);
    const run = await runToExit(["--port", "0"], { env: cliEnv({ WECOM_PROXY_CONFIG: fromEnv }) });
    expect(run.exit.code).not.toBe(0);
    expect(run.stderrLines).toEqual([`${configPrefix(fromEnv)}onlyInEnvFile: unknown key`]);
  });

  test("--config wins over $WECOM_PROXY_CONFIG", async () => {
    const fromEnv = writeConfig("env-loses.yaml", `${VALID}onlyInEnvFile: 1\n`);
    const fromFlag = writeConfig("flag-wins.yaml", `${VALID}onlyInFlagFile: 1\n`);
    const run = await runToExit(["--config", fromFlag, "--port", "0"], {
      env: cliEnv({ WECOM_PROXY_CONFIG: fromEnv }),
    });
    expect(run.exit.code).not.toBe(0);
    expect(run.stderrLines).toEqual([`${configPrefix(fromFlag)}onlyInFlagFile: unknown key`]);
  });

  test("without either, config/wecom-proxy.yaml in the working directory is read, and its absence is one line", async () => {
    const run = await runToExit(["--port", "0"], { cwd: dir });
    expect(run.exit.code).not.toBe(0);
    expect(run.exit.code).not.toBe(null);
    expect(run.stderrLines).toEqual([expect.stringMatching(/^wecom-proxy: .*config\/wecom-proxy\.yaml.*ENOENT/)]);
  });
});

describe("a valid configuration, started with --host 127.0.0.1 --port 0 and stopped with SIGTERM", () => {
  let cli: Cli | undefined;
  let listening: Record<string, unknown>;
  let healthy: Reply;
  let accessLine: Record<string, unknown>;
  let exit: Exit;
  let afterExit: unknown;
  let pidFile = "";

  beforeAll(async () => {
    pidFile = path.join(dir, "wecom-proxy.pid");
    const args = [
      "--config",
      writeConfig("ok.yaml", VALID),
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--pid-file",
      pidFile,
    ];
    cli = new Cli(args);
    listening = await cli.logLine("listening");
    const url = String(listening["url"]);
    healthy = await within(request(`${url}/-/healthy`), "GET /-/healthy");
    // Logged at info (a 400: no agent is configured for it). The log is buffered, and flushed
    // on a timer too: the line comes although nothing else happens.
    await within(request(`${url}/cgi-bin/user/get?userid=zhangsan`), "GET user/get");
    accessLine = await cli.logLine("request", (entry) => entry["status"] === 400);
    // The pid file names exactly this process: SIGTERM goes to the pid it holds.
    process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGTERM");
    exit = await cli.exited();
    afterExit = await within(
      request(`${url}/-/healthy`).then(
        (reply) => reply.status,
        (error: NodeJS.ErrnoException) => error.code,
      ),
      "a request after exit",
    );
  });
  afterAll(async () => {
    await cli?.kill();
  });

  test("logs a JSON listening line on stdout with the URL it bound", () => {
    expect(String(listening["url"])).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
  });

  test("answers GET /-/healthy with 200 and WeCom's ok", () => {
    expect({ status: healthy.status, body: healthy.json() }).toEqual({
      status: 200,
      body: { errcode: 0, errmsg: "ok" },
    });
  });

  test("exits 0 on SIGTERM", () => {
    expect(exit).toEqual({ code: 0, signal: null });
  });

  test("writes a request's access line while idle, and every line up to its last when it stops", () => {
    expect(accessLine).toMatchObject({ method: "GET", url: "/cgi-bin/user/get?userid=zhangsan", errcode: 9400001 });
    const lines = cli?.stdout.trimEnd().split("\n") ?? [];
    expect(JSON.parse(lines.at(-1) ?? "{}")).toMatchObject({ msg: "stopped" });
    expect(lines.filter((line) => line.includes('"msg":"shutting down"'))).toHaveLength(1);
  });

  test("removes its --pid-file when it stops", () => {
    expect(existsSync(pidFile)).toBe(false);
  });

  test("no longer accepts connections once it has exited", () => {
    expect(afterExit).toBe("ECONNREFUSED");
  });

  test("warns that a memory:// store forgets proxy-issued tokens at each restart", () => {
    const warning = cli?.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => String(line["msg"]).startsWith("proxy-issued wxp_ tokens live in memory://"));
    expect(warning).toMatchObject({ level: 40, store: "memory://" });
    expect(String(warning?.["msg"])).toContain("42001");
  });

  test("never prints the secret, even at log level trace", () => {
    expect(`${cli?.stdout}${cli?.stderr}`).not.toContain(SECRET);
  });
});

describe("with callbacks configured", () => {
  const token = "cli-callback-token";
  const encodingAESKey = "Y2xpLWNhbGxiYWNrLWtleS1ub3QtcmVhbC0wMDAwMDA";
  const withCallbacks = (port: number) => `${VALID}
callbacks:
  listen: { host: 127.0.0.1, port: ${port} }
  apps:
    notify:
      path: /wecom/callback/notify
      token: ${token}
      encodingAESKey: ${encodingAESKey}
      targets: [{ url: "http://127.0.0.1:9/events" }]
`;

  test("starts the callback listener, names it in the listening line, and closes it on SIGTERM", async () => {
    const cli = new Cli(["--config", writeConfig("callbacks.yaml", withCallbacks(0))]);
    try {
      const listening = await cli.logLine("listening");
      const callbacks = String(listening["callbacks"]);
      expect(callbacks).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
      const sealed = sealVerification({ token, encodingAESKey, receiveId: "wwclitest0001" }, "8675309", nowSeconds());
      const verified = await within(request(`${callbacks}/wecom/callback/notify?${sealed.query}`), "a verification");
      expect(verified.body.toString()).toBe("8675309");
      cli.signal("SIGTERM");
      expect(await cli.exited()).toEqual({ code: 0, signal: null });
      const after = await request(`${callbacks}/wecom/callback/notify`).then(
        () => "answered",
        (error: NodeJS.ErrnoException) => error.code,
      );
      expect(after).toBe("ECONNREFUSED");
      expect(`${cli.stdout}${cli.stderr}`).not.toContain(token);
      expect(`${cli.stdout}${cli.stderr}`).not.toContain(encodingAESKey);
    } finally {
      await cli.kill();
    }
  });

  test("a callback port already in use is one line and exit status 1", async () => {
    const blocker = http.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const run = await runToExit(["--config", writeConfig("callbacks-busy.yaml", withCallbacks(port))]);
      expect(run.exit.code).toBe(1);
      expect(run.stderrLines).toEqual([`wecom-proxy: cannot listen for callbacks on 127.0.0.1:${port} (EADDRINUSE)`]);
    } finally {
      blocker.close();
    }
  });
});

function nowSeconds(): string {
  return String(Math.floor(Date.now() / 1000));
}
