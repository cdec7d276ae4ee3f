#!/usr/bin/env node
// argv → config → problems (one line each, no stack) or a running proxy; signals.
import { startCallbacks, type RunningCallbacks } from "../callbacks/start-callbacks.js";
import { loadConfigFile } from "../config/load.js";
import { createLogger, logLevelFrom, stdoutDestination } from "../log.js";
import { createMetricsRegistry } from "../metrics.js";
import { InvalidEgressProxy } from "../proxy/egress-proxy.js";
import { createRuntime, type ProxyDeps, type Runtime } from "../server/create-proxy.js";
import { startServer, type RunningServer } from "../server/lifecycle.js";
import { reloadConfig } from "../server/reload.js";
import { parseCliArgs } from "./args.js";

async function main(): Promise<number> {
  const args = parseCliArgs(process.argv.slice(2), process.env);
  if (typeof args === "string") {
    process.stderr.write(`wecom-proxy: ${args}\n`);
    return args.startsWith("usage:") ? 0 : 2;
  }
  const loaded = loadConfigFile(args.configFile);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`wecom-proxy: config ${args.configFile}: ${problem}\n`);
    return 2;
  }
  const config = loaded.config;
  const log = createLogger(logLevelFrom(config.log.level), await stdoutDestination(config.log.format));
  const metrics = createMetricsRegistry();
  // The callback listener starts first and lives apart from the runtime: reloads keep it.
  let callbacks: RunningCallbacks | undefined;
  if (config.callbacks !== undefined) {
    const { host, port } = config.callbacks.listen;
    try {
      callbacks = await startCallbacks(config, { log, metrics });
    } catch (error) {
      process.stderr.write(
        `wecom-proxy: cannot listen for callbacks on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? String(error)})\n`,
      );
      return 1;
    }
  }
  const deps: ProxyDeps = { log, metrics, callbacks: callbacks?.relay };
  let runtime: Runtime;
  try {
    runtime = createRuntime(config, deps);
  } catch (error) {
    await callbacks?.close(0);
    if (!(error instanceof InvalidEgressProxy)) throw error;
    process.stderr.write(`wecom-proxy: ${error.message}\n`);
    return 2;
  }
  const host = args.host ?? config.listen.host;
  const port = args.port ?? config.listen.port;
  let running: RunningServer;
  try {
    running = await startServer(runtime, host, port);
  } catch (error) {
    process.stderr.write(
      `wecom-proxy: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? String(error)})\n`,
    );
    await runtime.close();
    await callbacks?.close(0);
    return 1;
  }
  // Before the line that tells the world it listens: a signal sent on seeing it is handled.
  handleSignals(running, callbacks, () => reloadConfig({ configFile: args.configFile, running, deps }), deps);
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
  return -1; // keeps running
}

/** SIGTERM/SIGINT: drain and exit 0; a second one ends the process at once. SIGHUP: reload. */
function handleSignals(
  running: RunningServer,
  callbacks: RunningCallbacks | undefined,
  reload: () => void,
  { log }: ProxyDeps,
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
