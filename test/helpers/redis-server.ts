// A real redis-server of the test's own: a free port on 127.0.0.1, data in a temp dir, no
// persistence, so a test can stop it and start it again as an outage would.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** The redis-server binary, or undefined when there is none on PATH. */
export const REDIS_SERVER = findOnPath("redis-server");
export const NO_REDIS_REASON = "no redis-server on PATH: Redis tests skipped (Debian: apt-get install redis-server)";

if (REDIS_SERVER === undefined) {
  // CI installs redis-server and sets this, so a missing binary fails there instead of skipping.
  if (process.env["WECOM_PROXY_TEST_REQUIRE_REDIS"] === "1") {
    throw new Error("no redis-server on PATH, and WECOM_PROXY_TEST_REQUIRE_REDIS=1 says the Redis tests must run");
  }
  console.warn(NO_REDIS_REASON);
}

const READY_LINE = "Ready to accept connections";
const START_WAIT_MS = 5000;

export interface RedisServerOptions {
  /** requirepass: clients must AUTH with it. */
  readonly password?: string;
  /** TLS only (rediss://), with this certificate and key (PEM files). */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly options: RedisServerOptions,
  ) {}

  /** A running server on a port nobody else had a moment ago (retried if it was taken meanwhile). */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-redis-"));
    for (let attempt = 1; ; attempt += 1) {
      const server = new RedisServer(await freePort(), dir, options);
      try {
        await server.resume();
        return server;
      } catch (error) {
        if (attempt === 3) {
          rmSync(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  /** A port where no Redis listens (yet): for a proxy that starts before its Redis. */
  static async reserve(options: RedisServerOptions = {}): Promise<RedisServer> {
    return new RedisServer(await freePort(), mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-redis-")), options);
  }

  /** redis://[:password@]127.0.0.1:PORT/DB (rediss:// with TLS) */
  url(db = 0, password = this.options.password): string {
    const auth = password === undefined ? "" : `:${encodeURIComponent(password)}@`;
    return `${this.options.tls === undefined ? "redis" : "rediss"}://${auth}127.0.0.1:${this.port}/${db}`;
  }

  /** Starts (again) on the same port; the data of a stopped server is gone. */
  async resume(): Promise<void> {
    if (this.child !== undefined) throw new Error("redis-server is already running");
    if (REDIS_SERVER === undefined) throw new Error(NO_REDIS_REASON);
    const { password, tls } = this.options;
    const args = ["--bind", "127.0.0.1", "--dir", this.dir, "--save", "", "--appendonly", "no"];
    args.push("--daemonize", "no", "--logfile", "");
    if (tls === undefined) args.push("--port", String(this.port));
    else args.push("--port", "0", "--tls-port", String(this.port), "--tls-auth-clients", "no");
    if (tls !== undefined) args.push("--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile);
    if (password !== undefined) args.push("--requirepass", password);
    const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (output.includes(READY_LINE)) resolve();
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-500)}`)));
      setTimeout(() => reject(new Error(`redis-server not ready in ${START_WAIT_MS} ms`)), START_WAIT_MS).unref();
    });
    try {
      await ready;
    } catch (error) {
      child.kill("SIGKILL");
      throw error;
    }
    this.child = child;
  }

  /** Stops it the way an outage does: at once, with whatever it held lost. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGSTOP: connections stay open but nothing answers, like a Redis stuck or cut off. */
  freeze(): void {
    this.child?.kill("SIGSTOP");
  }

  thaw(): void {
    this.child?.kill("SIGCONT");
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const OPENSSL = findOnPath("openssl");

/** A self-signed certificate for 127.0.0.1 in a temp dir, or undefined without openssl. */
export function selfSignedCertificate(): { certFile: string; keyFile: string; dir: string } | undefined {
  if (OPENSSL === undefined) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-tls-"));
  const certFile = path.join(dir, "cert.pem");
  const keyFile = path.join(dir, "key.pem");
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"];
  args.push("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", certFile);
  const made = spawnSync(OPENSSL, args, { stdio: "ignore", timeout: 10_000 });
  if (made.status !== 0) throw new Error(`openssl could not make a test certificate (status ${made.status})`);
  return { certFile, keyFile, dir };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, "close");
  return port;
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return undefined;
}
