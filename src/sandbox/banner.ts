// What `npm run sandbox` prints: commands that work as printed, each line within 100 columns.
import type { Config } from "../config/load.js";

export interface BannerUrls {
  readonly proxy: string;
  readonly wecom: string;
  readonly callbacks: string | undefined;
}

export function banner(urls: BannerUrls, config: Config): string {
  const { proxy, wecom, callbacks } = urls;
  return `
wecom-proxy sandbox: the proxy in front of a fake WeCom (nothing leaves this machine)
  proxy:      ${proxy}
  fake WeCom: ${wecom}${callbacks === undefined ? "" : `\n  callbacks:  ${callbacks} (the public side, where WeCom posts events)`}
${accessNote(config)}
Call WeCom through the proxy with no access_token: it picks the agent and injects its token.
  curl -s '${proxy}/cgi-bin/user/get?userid=zhangsan'
  curl -s -H 'X-WeCom-Agent: contacts' '${proxy}/cgi-bin/department/list'
  curl -s '${proxy}/cgi-bin/message/send' -H 'Content-Type: application/json' \\
    -d '${message(config)}'
  curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\\n' \\
    '${proxy}/cgi-bin/media/get?media_id=gen-1048576'
${legacyCommands(proxy, config)}
${callbackCommands(proxy, wecom, config)}Watch the proxy recover from a token WeCom invalidated early:
  curl -s -X POST '${wecom}/sandbox/invalidate'
  curl -s '${proxy}/cgi-bin/user/get?userid=lisi'
  curl -s '${wecom}/sandbox/stats'
(still errcode 0: the proxy fetched a new token and replayed the call; its log line says
 "replayed":true, and the stats count one gettoken more)

Make the fake WeCom misbehave: POST /sandbox/faults queues a fault for one path (errcode,
httpStatus, delayMs, hang, reset, stallAfterBytes, json, times); here the next gettoken
answers -1, "system busy":
  curl -s '${wecom}/sandbox/faults' -d '{"path":"/cgi-bin/gettoken","errcode":-1}'

Next: your own configuration against the fake WeCom: npm run sandbox -- --config my.yaml
Ctrl-C stops them all. The proxy's log follows.
`;
}

function message(config: Config): string {
  const agentid = [...config.agents.values()].find((agent) => agent.agentid !== undefined)?.agentid ?? 1000002;
  return JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid, text: { content: "hello" } });
}

/** With clients:, the commands above need a key; say which, without printing one. */
function accessNote(config: Config): string {
  if (config.clients === undefined) return "";
  return `
Access control is on (clients:): add -H 'Authorization: Bearer KEY' with a client's key to the calls.
`;
}

/** gettoken with an app's secret (or a client's key), then a call with the wxp_ token it returned. */
function legacyCommands(proxy: string, config: Config): string {
  const agent = [...config.agents.values()].find((candidate) => candidate.agentid !== undefined);
  const client = [...(config.clients?.values() ?? [])].find((candidate) => candidate.key !== undefined);
  const credential = config.clients === undefined ? agent?.secret : client?.key;
  if (agent === undefined || credential === undefined) return "";
  return `
An app that calls gettoken itself keeps its code: with its ${config.clients === undefined ? "app's secret" : "client key"} it gets a wxp_ token
(WeCom is not asked; the real token never leaves the proxy) and sends it as access_token:
  TOKEN=$(curl -s '${proxy}/cgi-bin/gettoken' -G \\
    --data-urlencode 'corpid=${agent.corpid}' --data-urlencode 'corpsecret=${credential.reveal()}' \\
    | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/'); echo "$TOKEN"
  curl -s "${proxy}/cgi-bin/user/get?userid=lisi&access_token=$TOKEN"
`;
}

function callbackCommands(proxy: string, wecom: string, config: Config): string {
  const app = [...(config.callbacks?.apps.values() ?? [])][0];
  if (app === undefined) return "";
  return `Watch WeCom's callbacks reach a local app: the fake WeCom signs and encrypts, the proxy
checks, decrypts, stores and relays, and the target prints what it got below:
  curl -s -X POST '${wecom}/sandbox/callbacks/${app.name}/verify'
  curl -s -X POST '${wecom}/sandbox/callbacks/${app.name}/event' -d 'hello from WeCom'
  curl -s '${proxy}/-/callbacks'
(the first is the URL verification WeCom's admin console makes; the second a user's text
 message; the last shows the app's pending, delivered and dead-lettered counts)

`;
}
