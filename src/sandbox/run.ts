#!/usr/bin/env node
// `npm run sandbox`: a fake WeCom on loopback and the proxy in front of it, with curl
// commands that work at once. No WeCom account needed.
import { parseArgs } from "node:util";
import { startCallbacks, type RunningCallbacks } from "../callbacks/start-callbacks.js";
import { loadConfigFile, type Config } from "../config/load.js";
import { createLogger, logLevelFrom, stdoutDestination } from "../log.js";
import { createMetricsRegistry } from "../metrics.js";
import { createRuntime } from "../server/create-proxy.js";
import { startServer } from "../server/lifecycle.js";
import { banner } from "./banner.js";
import { FakeWeCom } from "./fake-wecom.js";
import { startPrintTarget, type PrintTarget } from "./print-target.js";

const WEBHOOK_KEY = "sandbox-webhook-key";

const HELP = `usage: npm run sandbox -- [--config FILE] [--port N] [--wecom-port N] [--callbacks-port N]
                          [--target-port N]

Starts a fake WeCom on 127.0.0.1 and the proxy in front of it, and prints curl commands
that work at once. The fake WeCom accepts exactly the corpids and secrets of the config.

options:
  --config FILE         the proxy's configuration (default: config/sandbox.yaml); try your own:
                        its upstream is replaced by the fake WeCom, nothing reaches WeCom
  --port N              the proxy's port (default: the config's listen.port)
  --wecom-port N        the fake WeCom's port (default: the port of the config's upstream.url)
  --callbacks-port N    the callback listener's port (default: callbacks.listen.port)
  --target-port N       the local app that prints relayed callbacks (default: its target's port)
  -h, --help            print this help
Any port may be 0: a free one is picked, and the banner shows it.
`;

/** A failure the user can fix, told in one line. */
class SandboxProblem extends Error {}

type Values = Partial<Record<"config" | "port" | "wecom-port" | "callbacks-port" | "target-port", string>> & {
  help?: boolean;
};

function parse(argv: string[]): Values {
  try {
    return parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        port: { type: "string" },
        "wecom-port": { type: "string" },
        "callbacks-port": { type: "string" },
        "target-port": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new SandboxProblem(`${(error as Error).message} (npm run sandbox -- --help lists the options)`);
  }
}

/** The port an option names, else `fallback`. */
function portOption(
  values: Values,
  option: "port" | "wecom-port" | "callbacks-port" | "target-port",
  fallback: number,
) {
  const text = values[option];
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new SandboxProblem(`--${option}: "${text}" is not a port`);
  return Number(text);
}

/** Starts something on a port; a port in use names the option that moves it. */
async function onPort<T>(what: string, option: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EADDRINUSE" && code !== "EACCES") throw error;
    throw new SandboxProblem(
      `${what} cannot listen on port ${port} (${code === "EADDRINUSE" ? "in use" : code}): ` +
        `move it with --${option} N (0: any free port)`,
    );
  }
}

async function main(): Promise<void> {
  const values = parse(process.argv.slice(2));
  if (values.help === true) return void process.stdout.write(HELP);
  const configFile = values.config ?? "config/sandbox.yaml";
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`sandbox: config ${configFile}: ${problem}\n`);
    process.exitCode = 2;
    return;
  }
  const wecom = new FakeWeCom({ apps: appsOf(loaded.config), webhookKeys: [WEBHOOK_KEY] });
  const wecomPort = portOption(values, "wecom-port", Number(loaded.config.upstream.url.port || 18080));
  const wecomUrl = await onPort("the fake WeCom", "wecom-port", wecomPort, () => wecom.listen(wecomPort));
  let config: Config = { ...loaded.config, upstream: { ...loaded.config.upstream, url: new URL(wecomUrl) } };
  const log = createLogger(logLevelFrom(config.log.level), await stdoutDestination(config.log.format));
  const metrics = createMetricsRegistry();
  let target: PrintTarget | undefined;
  let callbacks: RunningCallbacks | undefined;
  try {
    if (config.callbacks !== undefined) {
      const configured = firstTargetOrigin(config);
      const targetPort = portOption(values, "target-port", Number(configured.port));
      target = await onPort("the printing target", "target-port", targetPort, () =>
        startPrintTarget(targetPort, (text) => process.stdout.write(text)),
      );
      config = withTargetOrigin(config, configured.origin, target.origin);
      const callbacksPort = portOption(values, "callbacks-port", config.callbacks!.listen.port);
      callbacks = await onPort("the callback listener", "callbacks-port", callbacksPort, () =>
        startCallbacks(config, { log, metrics }, callbacksPort),
      );
      wecom.callbacks.configure(
        [...config.callbacks!.apps.values()].map((app) => ({
          name: app.name,
          url: `${callbacks!.url}${app.path}`,
          token: app.token.reveal(),
          encodingAESKey: app.encodingAESKey.reveal(),
          receiveId: app.corpid,
        })),
      );
    }
    const runtime = createRuntime(config, { log, metrics, callbacks: callbacks?.relay });
    const port = portOption(values, "port", config.listen.port);
    const proxy = await onPort("the proxy", "port", port, () => startServer(runtime, config.listen.host, port));
    process.stdout.write(banner({ proxy: proxy.url, wecom: wecomUrl, callbacks: callbacks?.url }, config));
    const stop = async () => {
      await Promise.all([proxy.close(1000), callbacks?.close(1000)]);
      await Promise.all([wecom.close(), target?.close()]);
      process.exit(0);
    };
    process.once("SIGINT", () => void stop());
    process.once("SIGTERM", () => void stop());
  } catch (error) {
    await Promise.all([callbacks?.close(0), target?.close(), wecom.close()]);
    throw error;
  }
}

function appsOf(config: Config) {
  return [...config.agents.values()].map((agent) => ({
    corpid: agent.corpid,
    secret: agent.secret.reveal(),
    agentid: agent.agentid,
    families: agent.families,
  }));
}

function firstTargetOrigin(config: Config): URL {
  const first = [...(config.callbacks?.apps.values() ?? [])][0]?.targets[0]?.url;
  return new URL(first?.origin ?? "http://127.0.0.1:18081");
}

/** The config with every callback target at `from` moved to `to` (the printing target's real port). */
function withTargetOrigin(config: Config, from: string, to: string): Config {
  if (config.callbacks === undefined) return config;
  const apps = [...config.callbacks.apps].map(([path, app]) => {
    const targets = app.targets.map((target) =>
      target.url.origin === from
        ? { ...target, url: new URL(`${target.url.pathname}${target.url.search}`, to) }
        : target,
    );
    return [path, { ...app, targets }] as const;
  });
  return { ...config, callbacks: { ...config.callbacks, apps: new Map(apps) } };
}

main().catch((error: unknown) => {
  const known = error instanceof SandboxProblem;
  process.stderr.write(`sandbox: ${known ? error.message : ((error as Error).stack ?? String(error))}\n`);
  process.exitCode = known ? 2 : 1;
});
