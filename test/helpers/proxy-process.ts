// The proxy as a real process (`node dist/src/cli/main.js`): for signals, the environment, and
// each replica of a cluster. Needs `npm run build` (npm test runs it first).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { request } from "./http.js";

const MAIN = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
/** Every wait is bounded: a hung process fails its test instead of the whole run. */
export const WAIT_MS = 10_000;

type Line = Record<string, unknown>;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ProcessOptions {
  /** Starts it under `ulimit -n N` (a shell in front), to see what it does when descriptors run out. */
  readonly fileLimit?: number;
}

export class ProxyProcess {
  stdout = "";
  stderr = "";
  /** Set by listening() (start() waits for it), from its "listening" line. */
  url = "";
  readonly exit: Promise<Exit>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  /** A directory start() made for the configuration file; removed by stop(). */
  private ownDir: string | undefined;
  private marks = 0;

  constructor(configFile: string, env: NodeJS.ProcessEnv = {}, options: ProcessOptions = {}) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
    const base: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ["WECOM_PROXY_CONFIG", "LOG_LEVEL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]) {
      delete base[name];
      delete base[name.toLowerCase()];
    }
    const args = [MAIN, "--config", configFile];
    const [command, argv] =
      options.fileLimit === undefined
        ? [process.execPath, args]
        : ["/bin/sh", ["-c", `ulimit -n ${options.fileLimit} && exec "$0" "$@"`, process.execPath, ...args]];
    this.child = spawn(command, argv, { env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const collect = (stream: "stdout" | "stderr") => (chunk: string) => {
      this[stream] += chunk;
      for (const wake of this.waiters) wake();
    };
    this.child.stdout?.setEncoding("utf8").on("data", collect("stdout"));
    this.child.stderr?.setEncoding("utf8").on("data", collect("stderr"));
    this.exit = new Promise((resolve, reject) => {
      this.child.once("error", reject);
      this.child.once("close", (code, signal) => resolve({ code, signal }));
    });
  }

  /** Writes `config` (parsed YAML) to a file of its own, starts a proxy on it and waits until it listens. */
  static async start(
    config: Record<string, unknown>,
    env: NodeJS.ProcessEnv = {},
    options: ProcessOptions = {},
  ): Promise<ProxyProcess> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-process-"));
    const file = path.join(dir, "wecom-proxy.yaml");
    writeFileSync(file, stringify(config));
    const proxy = new ProxyProcess(file, env, options);
    proxy.ownDir = dir;
    await proxy.listening();
    return proxy;
  }

  /** Everything it wrote so far, stdout and stderr. */
  text(): string {
    return this.stdout + this.stderr;
  }

  /** Its JSON log lines so far. */
  lines(): Line[] {
    return this.stdout
      .split("\n")
      .filter((line) => line.startsWith("{") && line.endsWith("}"))
      .map((line) => JSON.parse(line) as Line);
  }

  /** The first log line, written or still to come, that matches, among the lines after the first `skip`. */
  waitForLine(match: (line: Line) => boolean, what: string, skip = 0): Promise<Line> {
    const found = new Promise<Line>((resolve, reject) => {
      const check = () => {
        const line = this.lines().slice(skip).find(match);
        if (line === undefined) return;
        this.waiters.delete(check);
        resolve(line);
      };
      this.waiters.add(check);
      void this.exit.then((exit) => {
        if (!this.waiters.delete(check)) return;
        reject(new Error(`exited (${JSON.stringify(exit)}) before logging ${what}: ${this.text().slice(-2000)}`));
      });
      check();
    });
    return within(found, `${what} (output: ${this.text().slice(-2000)})`);
  }

  /**
   * Its log lines, once every line logged before the call is on stdout. The log is written in
   * batches (at least every 200 ms) and in order: the line of a refused request made now (a
   * 404 of its own pages, logged at info) comes after all of them.
   */
  async loggedLines(): Promise<Line[]> {
    const mark = `/-/log-mark-${(this.marks += 1)}`;
    await request(`${this.url}${mark}`);
    await this.waitForLine((line) => line["url"] === mark, `the log mark ${mark}`);
    return this.lines();
  }

  /** Resolves once stdout contains `text`. */
  waitForText(text: string): Promise<void> {
    const found = new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!this.stdout.includes(text)) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      void this.exit.then(() => reject(new Error(`exited before printing ${text}: ${this.stderr}`)));
      check();
    });
    return within(found, `"${text}" on stdout (stdout: ${this.stdout}, stderr: ${this.stderr})`);
  }

  /** The URL from its "listening" line. */
  async listening(): Promise<string> {
    this.url = String((await this.waitForLine((line) => line["msg"] === "listening", '"listening"'))["url"]);
    return this.url;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  exited(): Promise<Exit> {
    return within(this.exit, `the process to exit (stdout: ${this.stdout}, stderr: ${this.stderr})`);
  }

  /** SIGKILL: gone at once, whatever it held (a lock, say) left behind. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGKILL");
      await this.exit.catch(() => undefined);
    }
  }

  /** SIGTERM (SIGKILL if it does not go within WAIT_MS), then removes start()'s directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), WAIT_MS);
      await this.exit.catch(() => undefined);
      clearTimeout(timer);
    }
    if (this.ownDir !== undefined) rmSync(this.ownDir, { recursive: true, force: true });
  }
}

export function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
