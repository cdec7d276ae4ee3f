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
import { FakeWeCom } from "./fake-wecom.js";
import { startPrintTarget, type PrintTarget } from "./print-target.js";

const WEBHOOK_KEY = "sandbox-webhook-key";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "config/sandbox.yaml" },
      port: { type: "string" },
      "wecom-port": { type: "string" },
      "callbacks-port": { type: "string" },
      "target-port": { type: "string" },
    },
  });
  const loaded = loadConfigFile(values.config);
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`sandbox: config ${values.config}: ${problem}\n`);
    process.exitCode = 2;
    return;
  }
  const wecom = new FakeWeCom({ apps: appsOf(loaded.config), webhookKeys: [WEBHOOK_KEY] });
  const wecomUrl = await wecom.listen(Number(values["wecom-port"] ?? loaded.config.upstream.url.port));
  let config: Config = { ...loaded.config, upstream: { ...loaded.config.upstream, url: new URL(wecomUrl) } };
  const log = createLogger(logLevelFrom(config.log.level), await stdoutDestination(config.log.format));
  const metrics = createMetricsRegistry();
  let target: PrintTarget | undefined;
  let callbacks: RunningCallbacks | undefined;
  if (config.callbacks !== undefined) {
    const configured = firstTargetOrigin(config);
    target = await startPrintTarget(Number(values["target-port"] ?? configured.port), (text) =>
      process.stdout.write(text),
    );
    config = withTargetOrigin(config, configured.origin, target.origin);
    const callbacksPort = values["callbacks-port"] === undefined ? undefined : Number(values["callbacks-port"]);
    callbacks = await startCallbacks(config, { log, metrics }, callbacksPort);
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
  const proxy = await startServer(runtime, config.listen.host, Number(values.port ?? config.listen.port));
  process.stdout.write(banner(proxy.url, wecomUrl, config, callbacks?.url));
  const stop = async () => {
    await Promise.all([proxy.close(1000), callbacks?.close(1000)]);
    await Promise.all([wecom.close(), target?.close()]);
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}

function appsOf(config: Config) {
  return [...config.agents.values()].map((agent) => ({
    corpid: agent.corpid,
    secret: agent.secret.reveal(),
    agentid: agent.agentid,
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

function callbackCommands(proxy: string, wecom: string, config: Config): string {
  const app = [...(config.callbacks?.apps.values() ?? [])][0];
  if (app === undefined) return "";
  return `Watch WeCom's callbacks reach a local app: the fake WeCom signs and encrypts, the proxy checks,
decrypts, stores and relays, and the target prints what it got below:
  curl -s -X POST '${wecom}/sandbox/callbacks/${app.name}/verify'
  curl -s -X POST '${wecom}/sandbox/callbacks/${app.name}/event' -d 'hello from WeCom'
  curl -s '${proxy}/-/callbacks'
(the first is the URL verification WeCom's admin console makes; the second a user's text
 message; the last shows the app's pending, delivered and dead-lettered counts)

`;
}

function banner(proxy: string, wecom: string, config: Config, callbacks: string | undefined): string {
  const agentid = [...config.agents.values()].find((agent) => agent.agentid !== undefined)?.agentid ?? 1000002;
  const legacy = [...config.agents.values()][0];
  const gettoken =
    legacy === undefined || config.clients !== undefined
      ? ""
      : `
A legacy app that calls gettoken itself gets a proxy-issued wxp_ token (WeCom is not asked):
  curl -s '${proxy}/cgi-bin/gettoken?corpid=${legacy.corpid}&corpsecret=${legacy.secret.reveal()}'
`;
  const message = JSON.stringify({
    touser: "zhangsan",
    msgtype: "text",
    agentid,
    text: { content: "hello from the sandbox" },
  });
  return `
wecom-proxy sandbox: the proxy in front of a fake WeCom (nothing leaves this machine)
  proxy:      ${proxy}
  fake WeCom: ${wecom}${callbacks === undefined ? "" : `\n  callbacks:  ${callbacks} (the public side, where WeCom posts events)`}

Call WeCom through the proxy; no access_token anywhere:
  curl -s '${proxy}/cgi-bin/user/get?userid=zhangsan'
  curl -s -X POST '${proxy}/cgi-bin/message/send' -H 'Content-Type: application/json' -d '${message}'
  curl -s -H 'X-WeCom-Agent: contacts' '${proxy}/cgi-bin/department/list'
  curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\\n' '${proxy}/cgi-bin/media/get?media_id=gen-1048576'
${gettoken}
${callbackCommands(proxy, wecom, config)}Watch the proxy recover from a token WeCom invalidated early:
  curl -s -X POST '${wecom}/sandbox/invalidate'
  curl -s '${proxy}/cgi-bin/user/get?userid=lisi'
  curl -s '${wecom}/sandbox/stats'
(the answer is still errcode 0: the proxy fetched a new token and replayed the call; its log
 line says "replayed":true, and the stats count one gettoken more)

Ctrl-C stops them all. The proxy's log follows.
`;
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
