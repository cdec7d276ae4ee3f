#!/usr/bin/env node
// argv → config → problems (one line each, no stack) or a running proxy.
import { startCallbacks, type RunningCallbacks } from "../callbacks/start-callbacks.js";
import { loadConfigFile } from "../config/load.js";
import { createLogger } from "../log.js";
import { createMetricsRegistry } from "../metrics.js";
import { createRuntime } from "../server/create-proxy.js";
import { startServer } from "../server/lifecycle.js";
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
  const log = createLogger(process.env["LOG_LEVEL"] ?? config.log.level);
  const metrics = createMetricsRegistry();
  let callbacks: RunningCallbacks | undefined;
  if (config.callbacks !== undefined) {
    const { host, port } = config.callbacks.listen;
    try {
      callbacks = await startCallbacks(config, { log, metrics });
    } catch (error) {
      process.stderr.write(
        `wecom-proxy: cannot listen for callbacks on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? error})\n`,
      );
      return 1;
    }
  }
  const runtime = createRuntime(config, { log, metrics, callbacks: callbacks?.relay });
  const host = args.host ?? config.listen.host;
  const port = args.port ?? config.listen.port;
  let running;
  try {
    running = await startServer(runtime, host, port);
  } catch (error) {
    process.stderr.write(
      `wecom-proxy: cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? error})\n`,
    );
    await runtime.close();
    await callbacks?.close(0);
    return 1;
  }
  log.info(
    {
      url: running.url,
      agents: [...config.agents.keys()],
      store: runtime.store.description,
      callbacks: callbacks?.url,
    },
    "listening",
  );
  const stop = async (signal: string) => {
    log.info({ signal }, "shutting down");
    await Promise.all([running.close(), callbacks?.close()]);
    log.flush();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
  return -1; // keeps running
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
