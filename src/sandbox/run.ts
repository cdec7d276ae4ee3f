#!/usr/bin/env node
// `npm run sandbox`: a fake WeCom on loopback and the proxy in front of it, with curl
// commands that work at once. No WeCom account needed.
import { parseArgs } from "node:util";
import { loadConfigFile, type Config } from "../config/load.js";
import { createLogger, logLevelFrom, stdoutDestination } from "../log.js";
import { createRuntime } from "../server/create-proxy.js";
import { startServer } from "../server/lifecycle.js";
import { FakeWeCom } from "./fake-wecom.js";

const WEBHOOK_KEY = "sandbox-webhook-key";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", default: "config/sandbox.yaml" },
      port: { type: "string" },
      "wecom-port": { type: "string" },
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
  const config: Config = { ...loaded.config, upstream: { ...loaded.config.upstream, url: new URL(wecomUrl) } };
  const log = createLogger(logLevelFrom(config.log.level), stdoutDestination(config.log.format));
  const runtime = createRuntime(config, { log });
  const proxy = await startServer(runtime, config.listen.host, Number(values.port ?? config.listen.port));
  process.stdout.write(banner(proxy.url, wecomUrl, config));
  const stop = async () => {
    await proxy.close(1000);
    await wecom.close();
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

function banner(proxy: string, wecom: string, config: Config): string {
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
  fake WeCom: ${wecom}

Call WeCom through the proxy; no access_token anywhere:
  curl -s '${proxy}/cgi-bin/user/get?userid=zhangsan'
  curl -s -X POST '${proxy}/cgi-bin/message/send' -H 'Content-Type: application/json' -d '${message}'
  curl -s -H 'X-WeCom-Agent: contacts' '${proxy}/cgi-bin/department/list'
  curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\\n' '${proxy}/cgi-bin/media/get?media_id=gen-1048576'
${gettoken}
Watch the proxy recover from a token WeCom invalidated early:
  curl -s -X POST '${wecom}/sandbox/invalidate'
  curl -s '${proxy}/cgi-bin/user/get?userid=lisi'
  curl -s '${wecom}/sandbox/stats'
(the answer is still errcode 0: the proxy fetched a new token and replayed the call; its log
 line says "replayed":true, and the stats count one gettoken more)

Ctrl-C stops both. The proxy's log follows.
`;
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
