// A proxy in a process of its own (`node dist/src/cli/main.js`), as each replica of a cluster
// is. Needs `npm run build` (npm test runs it first).
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";

const MAIN = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
/** Every wait is bounded: a hung process fails its test instead of the whole run. */
const WAIT_MS = 10_000;

type Line = Record<string, unknown>;

export class ProxyProcess {
  url = "";
  private output = "";
  private readonly lineWaiters = new Set<() => void>();
  private readonly exit: Promise<unknown>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    const collect = (chunk: string) => {
      this.output += chunk;
      for (const check of [...this.lineWaiters]) check();
    };
    child.stdout?.setEncoding("utf8").on("data", collect);
    child.stderr?.setEncoding("utf8").on("data", collect);
    this.exit = once(child, "exit");
  }

  /** Starts a proxy on `config` (parsed YAML) and waits until it listens. */
  static async start(config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<ProxyProcess> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-replica-"));
    const file = path.join(dir, "wecom-proxy.yaml");
    writeFileSync(file, stringify(config));
    const child = spawn(process.execPath, [MAIN, "--config", file], {
      env: { PATH: process.env["PATH"], ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proxy = new ProxyProcess(child, dir);
    const listening = await proxy.waitForLine((line) => line["msg"] === "listening", "listening");
    proxy.url = String(listening["url"]);
    return proxy;
  }

  /** Everything it wrote so far, stdout and stderr. */
  text(): string {
    return this.output;
  }

  lines(): Line[] {
    return this.output
      .split("\n")
      .filter((line) => line.startsWith("{") && line.endsWith("}"))
      .map((line) => JSON.parse(line) as Line);
  }

  /**
   * The first log line, written or still to come, that matches, among the lines after the
   * first `skip` (see lines().length); rejects after WAIT_MS.
   */
  waitForLine(match: (line: Line) => boolean, what: string, skip = 0): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines().slice(skip).find(match);
        if (found === undefined) return;
        settle();
        resolve(found);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`no "${what}" log line within ${WAIT_MS} ms; output:\n${this.output.slice(-2000)}`));
      }, WAIT_MS);
      const settle = () => {
        clearTimeout(timer);
        this.lineWaiters.delete(check);
      };
      this.lineWaiters.add(check);
      void this.exit.then(() => {
        if (!this.lineWaiters.has(check)) return;
        settle();
        reject(new Error(`exited before logging "${what}"; output:\n${this.output.slice(-2000)}`));
      });
      check();
    });
  }

  /** SIGKILL: gone at once, whatever it held (a lock, say) left behind. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGKILL");
    await this.exit;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), WAIT_MS);
      await this.exit;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
