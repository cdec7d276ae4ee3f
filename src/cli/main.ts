#!/usr/bin/env node
// argv → config → problems (one line each, no stack) or a running proxy; signals.
import { rmSync, writeFileSync } from "node:fs";
import { startCallbacks, type RunningCallbacks } from "../callbacks/start-callbacks.js";
import { exposureProblems } from "../config/exposure.js";
import { loadConfigFile, type Config } from "../config/load.js";
import { createLogger, logLevelFrom, stdoutDestination, type Logger } from "../log.js";
import { createMetricsRegistry } from "../metrics.js";
import { BodyBudget } from "../http/body-budget.js";
import { InvalidEgressProxy } from "../proxy/egress-proxy.js";
import { createRuntime, type ProxyDeps, type Runtime } from "../server/create-proxy.js";
import { startServer, type RunningServer } from "../server/lifecycle.js";
import { reloadConfig } from "../server/reload.js";
import { openStore } from "../store/open-store.js";
import type { Store } from "../store/store.js";
import { parseCliArgs } from "./args.js";

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  // Subcommands load only when asked for: starting the proxy stays as quick as before.
  if (command === "routes") return (await import("./run-routes.js")).runRoutes(rest, process.env);
  if (command === "doctor") return (await import("./doctor.js")).runDoctor(rest, process.env);
  const args = parseCliArgs(process.argv.slice(2), process.env);
  if (typeof args === "string") {
    process.stderr.write(`wecom-proxy: ${args}\n`);
    return 2;
  }
  if ("info" in args) {
    process.stdout.write(args.info);
    return 0;
  }
  const loaded = loadConfigFile(args.configFile);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`wecom-proxy: config ${args.configFile}: ${problem}\n`);
    if (loaded.problems.some((problem) => problem.includes(": environment variable "))) {
      process.stderr.write("wecom-proxy: no WeCom account at hand? `npm run sandbox` needs no variables\n");
    }
    return 2;
  }
  const config = loaded.config;
  const host = args.host ?? config.listen.host;
  const port = args.port ?? config.listen.port;
  const exposed = exposureProblems(config, host);
  if (exposed.length > 0) {
    for (const problem of exposed) process.stderr.write(`wecom-proxy: ${problem}\n`);
    return 2;
  }
  const log = createLogger(logLevelFrom(config.log.level), await stdoutDestination(config.log.format));
  const metrics = createMetricsRegistry();
  // One store for the process: tokens, access, tickets and callbacks share its connection.
  const store = openStore(config.store.url, Date.now, log);
  // One budget for the bodies both listeners buffer.
  const bodyBudget = new BodyBudget(config.limits.maxBufferedBytes);
  // The callback listener starts first and lives apart from the runtime: reloads keep it.
  let callbacks: RunningCallbacks | undefined;
  if (config.callbacks !== undefined) {
    const { host, port } = config.callbacks.listen;
    try {
      callbacks = await startCallbacks(config, { log, metrics, store, bodyBudget });
    } catch (error) {
      process.stderr.write(
        `wecom-proxy: cannot listen for callbacks on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? String(error)})\n`,
      );
      await store.close();
      return 1;
    }
  }
  const deps: ProxyDeps = {
    log,
    metrics,
    store,
    storeUrl: config.store.url,
    callbacks: callbacks?.relay,
    bodyBudget,
  };
  let runtime: Runtime;
  try {
    runtime = createRuntime(config, deps);
  } catch (error) {
    await callbacks?.close(0);
    await store.close();
    if (!(error instanceof InvalidEgressProxy)) throw error;
    process.stderr.write(`wecom-proxy: ${error.message}\n`);
    return 2;
  }
  let running: RunningServer;
  try {
    running = await startServer(runtime, host, port);
  } catch (error) {
    process.stderr.write(
      `wecom-proxy: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? String(error)})\n`,
    );
    await runtime.close();
    await callbacks?.close(0);
    await store.close();
    return 1;
  }
  // Before the line that tells the world it listens: a signal sent on seeing it is handled.
  const reload = () =>
    reloadConfig({ configFile: args.configFile, running, deps, check: (next) => exposureProblems(next, host) });
  if (args.pidFile !== undefined) writePidFile(args.pidFile);
  handleSignals(running, callbacks, reload, deps, store, args.pidFile);
  log.info(
    {
      url: running.url,
      agents: [...config.agents.keys()],
      store: runtime.store.description,
      egress: runtime.upstream.egress,
      callbacks: callbacks?.url,
    },
    "listening",
  );
  warnAboutMemoryStore(config, log);
  return -1; // keeps running
}

/** The exact process to signal (`kill -HUP "$(cat FILE)"`), where pgrep would guess. */
function writePidFile(file: string): void {
  writeFileSync(file, `${process.pid}\n`);
}

/** Legacy apps hold wxp_ tokens the store must remember; memory:// forgets them at each restart. */
function warnAboutMemoryStore(config: Config, log: Logger): void {
  if (config.store.url !== "memory://") return;
  log.warn(
    { store: config.store.url },
    "proxy-issued wxp_ tokens live in memory:// and are forgotten at each restart: apps that got one " +
      "from gettoken receive 42001 and must fetch a new one; use sqlite:// or redis:// to keep them",
  );
}

/** SIGTERM/SIGINT: drain and exit 0; a second one ends the process at once. SIGHUP: reload. */
function handleSignals(
  running: RunningServer,
  callbacks: RunningCallbacks | undefined,
  reload: () => void,
  { log }: ProxyDeps,
  store: Store,
  pidFile: string | undefined,
): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "stopping at once; requests in flight are cut");
      log.flush();
      process.exit(1);
    }
    stopping = true;
    const graceMs = running.runtime.config.shutdownGraceMs;
    // close() stops accepting before it returns; only then does the log say so.
    const closing = Promise.all([running.close(graceMs), callbacks?.close(graceMs)]);
    log.info({ signal, graceMs }, "shutting down");
    await closing;
    await store.close();
    if (pidFile !== undefined) rmSync(pidFile, { force: true });
    log.info("stopped");
    log.flush();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => {
    log.info({ signal: "SIGHUP" }, "reloading the config");
    try {
      reload();
    } catch (error) {
      // A bug while building the new configuration: the running one is untouched and serves on.
      log.error({ err: error }, "config reload failed");
    }
  });
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`wecom-proxy: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
