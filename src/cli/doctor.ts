// `wecom-proxy doctor`: each agent against WeCom — gettoken, then one harmless read its families
// should allow — as a table. Exit 0 when every agent passes, 1 otherwise, 2 for a bad config.
import { parseArgs } from "node:util";
import type { AgentConfig, Config } from "../config/load.js";
import { loadConfigFile } from "../config/load.js";
import { ProxyError } from "../errors.js";
import { egressProxyFor, InvalidEgressProxy } from "../proxy/egress-proxy.js";
import { createUpstream, type Upstream } from "../proxy/upstream.js";
import { familyOf } from "../wecom/api-families.js";
import { describeGettokenRejection, IP_NOT_ALLOWED } from "../wecom/errcodes.js";
import { gettoken, GettokenBusy, GettokenRejected } from "../wecom/gettoken.js";
import { harmlessReadFor, ownReadFor, type HarmlessRead } from "../wecom/harmless-reads.js";
import { egressIpOf, hintFor, isProblemErrcode } from "../wecom/problem-hints.js";

export const DOCTOR_USAGE = "usage: wecom-proxy doctor [--config FILE]";

export interface DoctorRow {
  readonly agent: string;
  readonly families: string;
  readonly token: string;
  readonly read: string;
  readonly egressIp: string;
  readonly hint: string;
  readonly ok: boolean;
}

export async function runDoctor(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`wecom-proxy doctor: ${(error as Error).message}\n${DOCTOR_USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stderr.write(`${DOCTOR_USAGE}\n`);
    return 0;
  }
  const configFile = values.config ?? env["WECOM_PROXY_CONFIG"] ?? "config/wecom-proxy.yaml";
  const loaded = loadConfigFile(configFile, { env });
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`wecom-proxy: config ${configFile}: ${problem}\n`);
    return 2;
  }
  let upstream: Upstream;
  try {
    const { url, timeoutMs, proxy } = loaded.config.upstream;
    upstream = createUpstream(url, timeoutMs, egressProxyFor(url, proxy));
  } catch (error) {
    if (!(error instanceof InvalidEgressProxy)) throw error;
    process.stderr.write(`wecom-proxy: ${error.message}\n`);
    return 2;
  }
  try {
    const rows = await diagnose(loaded.config, upstream);
    process.stdout.write(render(rows));
    return rows.every((row) => row.ok) ? 0 : 1;
  } finally {
    upstream.close();
  }
}

/** One row per agent, checked one after the other (gettoken is rate limited). */
export async function diagnose(config: Config, upstream: Upstream): Promise<DoctorRow[]> {
  const rows: DoctorRow[] = [];
  for (const agent of config.agents.values()) rows.push(await checkAgent(config, upstream, agent));
  return rows;
}

async function checkAgent(config: Config, upstream: Upstream, agent: AgentConfig): Promise<DoctorRow> {
  const families = agent.families.join(",") || "-";
  let token: string;
  try {
    token = (await gettoken(upstream.getJson, agent.corpid, agent.secret)).token;
  } catch (error) {
    const failed = (what: string, hint: string, egressIp = "-") =>
      ({ agent: agent.name, families, token: what, read: "-", egressIp, hint, ok: false }) as const;
    if (error instanceof GettokenRejected) {
      const egressIp = egressIpOf(error.errmsg);
      const hint =
        error.errcode === IP_NOT_ALLOWED
          ? hintFor({
              errcode: IP_NOT_ALLOWED,
              path: "/cgi-bin/gettoken",
              agent,
              family: undefined,
              familyAgent: undefined,
              egressIp,
            })
          : `gettoken ${describeGettokenRejection(error.errcode)}`;
      return failed(`errcode ${error.errcode}`, hint, egressIp);
    }
    if (error instanceof GettokenBusy) return failed("errcode -1", "WeCom is busy: try again in a moment");
    if (error instanceof ProxyError) return failed("unreachable", error.message);
    throw error;
  }
  const read = readFor(agent);
  if (read === undefined) {
    const hint = `no harmless read for ${families}: token checked only`;
    return { agent: agent.name, families, token: "ok", read: "skipped", egressIp: "-", hint, ok: true };
  }
  const shown = `${read.method} ${read.pathAndQuery.split("?")[0]}`;
  let answer: { errcode: number | undefined; errmsg: string };
  try {
    answer = await call(upstream, read, token);
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return {
      agent: agent.name,
      families,
      token: "ok",
      read: `${shown}: unreachable`,
      egressIp: "-",
      hint: error.message,
      ok: false,
    };
  }
  const egressIp = egressIpOf(answer.errmsg) ?? "-";
  if (answer.errcode === 0)
    return { agent: agent.name, families, token: "ok", read: `ok (${shown})`, egressIp, hint: "", ok: true };
  const path = read.pathAndQuery.split("?")[0] as string;
  const errcode = answer.errcode ?? -1;
  const hint = isProblemErrcode(errcode)
    ? hintFor({
        errcode,
        path,
        agent,
        family: familyOf(path),
        familyAgent: familyAgentName(config, path),
        egressIp: egressIp === "-" ? undefined : egressIp,
      })
    : `WeCom answered errcode ${errcode}: ${answer.errmsg.split(",")[0] ?? ""}`;
  return { agent: agent.name, families, token: "ok", read: `errcode ${errcode} (${shown})`, egressIp, hint, ok: false };
}

function familyAgentName(config: Config, path: string): string | undefined {
  const family = familyOf(path);
  return family === undefined ? undefined : config.familyAgents.get(family)?.name;
}

/** The first family with a harmless read, else the app's own. */
function readFor(agent: AgentConfig): HarmlessRead | undefined {
  const now = Math.floor(Date.now() / 1000);
  for (const family of agent.families) {
    const read = harmlessReadFor(family, now);
    if (read !== undefined) return read;
  }
  return agent.families.length === 0 ? ownReadFor(agent.agentid) : undefined;
}

/** One small JSON call with the token; the errcode and errmsg of the answer. */
async function call(
  upstream: Upstream,
  read: HarmlessRead,
  token: string,
): Promise<{ errcode: number | undefined; errmsg: string }> {
  const mark = read.pathAndQuery.includes("?") ? "&" : "?";
  const answer = await upstream.callJson({
    method: read.method,
    pathAndQuery: `${read.pathAndQuery}${mark}access_token=${encodeURIComponent(token)}`,
    body: read.body === undefined ? undefined : JSON.stringify(read.body),
    userAgent: "wecom-proxy doctor",
  });
  const json = answer.body as { errcode?: unknown; errmsg?: unknown } | undefined;
  return {
    errcode: typeof json?.errcode === "number" ? json.errcode : undefined,
    errmsg: typeof json?.errmsg === "string" ? json.errmsg : `HTTP ${answer.status}`,
  };
}

function render(rows: readonly DoctorRow[]): string {
  const cells = [
    ["AGENT", "FAMILIES", "TOKEN", "READ", "EGRESS IP", "HINT"],
    ...rows.map((row) => [row.agent, row.families, row.token, row.read, row.egressIp, row.hint]),
  ];
  const widths = (cells[0] as string[]).map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)));
  const lines = cells.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
  const failed = rows.filter((row) => !row.ok).length;
  lines.push("", failed === 0 ? "every agent passed" : `${failed} of ${rows.length} agents failed`);
  return `${lines.join("\n")}\n`;
}
