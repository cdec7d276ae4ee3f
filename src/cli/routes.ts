// `wecom-proxy routes`: the effective routing table, and why one request would use its agent.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ClientDirectory } from "../access/client-directory.js";
import { authorize } from "../access/authorize.js";
import { callerOf, type Caller } from "../access/caller.js";
import type { Config } from "../config/load.js";
import { ProxyError } from "../errors.js";
import { normalizePath } from "../routing/normalize-path.js";
import { bearerOf } from "../http/bearer.js";
import { splitTarget } from "../http/request-target.js";
import { locate } from "../routing/locate.js";
import { Routing, type AgentPick } from "../routing/pick-agent.js";
import { FAMILIES, FAMILY_LABELS, FAMILY_TABLE, familyOf, type Family } from "../wecom/api-families.js";

export const ROUTES_USAGE =
  "usage: wecom-proxy routes [--config FILE] [--explain 'METHOD PATH[?QUERY]' [-H 'Name: value']... [--body FILE]]";

export interface RoutesArgs {
  readonly configFile: string | undefined;
  readonly explain: ExplainRequest | undefined;
}

export interface ExplainRequest {
  readonly method: string;
  readonly target: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** argv after "routes" → options, or a message for the user (USAGE alone for --help). */
export function parseRoutesArgs(argv: readonly string[]): RoutesArgs | string {
  let values: { config?: string; explain?: string; header?: string[]; body?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        explain: { type: "string" },
        header: { type: "string", short: "H", multiple: true },
        body: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return `${(error as Error).message}\n${ROUTES_USAGE}`;
  }
  if (values.help === true) return ROUTES_USAGE;
  if (values.explain === undefined) {
    if (values.header !== undefined || values.body !== undefined) return "-H and --body need --explain";
    return { configFile: values.config, explain: undefined };
  }
  const line = /^\s*([A-Za-z]+)\s+(\/\S*)\s*$/.exec(values.explain);
  if (line === null) return `--explain: "${values.explain}" is not "METHOD /path"`;
  const headers: Record<string, string> = {};
  for (const header of values.header ?? []) {
    const colon = header.indexOf(":");
    if (colon <= 0) return `-H: "${header}" is not "Name: value"`;
    headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  let body = Buffer.alloc(0);
  if (values.body !== undefined) {
    try {
      body = readFileSync(values.body);
    } catch (error) {
      return `--body: ${values.body} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`;
    }
  }
  return {
    configFile: values.config,
    explain: { method: (line[1] as string).toUpperCase(), target: line[2] as string, headers, body },
  };
}

/** Every rule that sends a path to an agent, in the order they apply, and the families nobody declares. */
export function describeRoutes(config: Config): string {
  const rows: Array<[string, string, string]> = [];
  for (const mount of config.mounts) rows.push([`${mount.prefix}/…`, mount.agent.name, "mount (rule 2; stripped)"]);
  for (const agent of config.agents.values()) {
    if (agent.agentid !== undefined) rows.push([`agentid=${agent.agentid}`, agent.name, "agentid (rule 4)"]);
  }
  for (const route of config.routes) rows.push([route.prefix, route.agent.name, "route (rule 6)"]);
  for (const row of FAMILY_TABLE) {
    const path = `/cgi-bin/${row.api}`;
    const agent = config.familyAgents.get(row.family);
    if (agent === undefined) continue;
    const shadow = config.routes.find((route) => path.startsWith(route.prefix));
    const rule = `family ${row.family} (rule 7)`;
    rows.push([
      path,
      shadow?.agent.name ?? agent.name,
      shadow === undefined ? rule : `route ${shadow.prefix} before ${rule}`,
    ]);
  }
  if (config.defaultAgent !== undefined)
    rows.push(["any other path", config.defaultAgent.name, "defaultAgent (rule 8)"]);
  const lines = table([["PATH", "AGENT", "RULE"], ...rows]);
  lines.push(
    "",
    "Before these: X-WeCom-Agent (rule 1), a proxy-issued token (rule 3), and a resource an agent created (rule 5).",
  );
  const undeclared = FAMILIES.filter((family) => !config.familyAgents.has(family));
  lines.push(
    "",
    undeclared.length === 0
      ? "every API family is declared by an agent"
      : `families no agent declares (their paths fall through to defaultAgent): ${undeclared.map(labelled).join(", ")}`,
  );
  if (config.clients !== undefined) lines.push("access control is on: each client chooses among its own agents only");
  return `${lines.join("\n")}\n`;
}

/** Which agent the request would use, by which rule, and why. */
export function explainRequest(config: Config, request: ExplainRequest): string {
  const { rawPath, rawQuery } = splitTarget(request.target);
  const subject = `${request.method} ${request.target.split("?")[0]}`;
  try {
    const path = normalizePath(rawPath);
    const scope = scopeOf(config, request.headers);
    if (typeof scope === "string") return `${subject}: ${scope}\n`;
    const located = locate(config, path, request.headers["x-wecom-agent"]);
    const pick = new Routing(config).pick(located, { rawQuery, body: request.body, allowed: scope?.agents });
    authorize(scope, pick);
    return `${subject} → ${because(config, pick, rawQuery)}\n`;
  } catch (error) {
    if (!(error instanceof ProxyError)) throw error;
    return `${subject} → HTTP ${error.status}: ${error.message}\n`;
  }
}

/** The client the headers authenticate, when access control is on. */
function scopeOf(config: Config, headers: Readonly<Record<string, string>>): Caller | undefined | string {
  if (config.clients === undefined) return undefined;
  const credential = bearerOf(headers);
  const key = credential.kind === "bearer" ? credential.value : undefined;
  const client = key === undefined ? undefined : new ClientDirectory(config.clients).byKey(key);
  if (client !== undefined) return callerOf(client);
  return key === undefined
    ? "access control is on: give -H 'Authorization: Bearer KEY' (a client's key) to see its route; without it the request gets HTTP 401"
    : "the Authorization key is no client's: the request would get HTTP 401";
}

function because(config: Config, pick: AgentPick, rawQuery: string): string {
  if (pick.agent === undefined) return "no agent: the path carries its own credentials and goes without a token";
  const agent = `agent "${pick.agent.name}"`;
  const forwarded = pick.path;
  const family = familyOf(forwarded);
  const familyNote = family === undefined ? "" : `; the path's family is ${familyText(config, family)}`;
  switch (pick.rule) {
    case "header":
      return `${agent}, rule 1: the X-WeCom-Agent header names it${familyNote}`;
    case "mount":
      return `${agent}, rule 2: its mount; forwarded as ${forwarded}${familyNote}`;
    case "issued-token":
      return `${agent}, rule 3: the proxy-issued access_token names it`;
    case "agentid":
      return `${agent}, rule 4: agentid ${pick.agent.agentid ?? "?"} in the ${rawQuery.includes("agentid=") ? "query" : "JSON body"}${familyNote}`;
    case "affinity":
      return `${agent}, rule 5: it created the resource the request names`;
    case "route":
      return `${agent}, rule 6: routes[].path ${config.routes.find((r) => forwarded.startsWith(r.prefix))?.prefix ?? "?"}${familyNote}`;
    case "family":
      return `${agent}, rule 7: ${forwarded} needs the ${labelled(family as Family)} secret, and ${agent} declares that family`;
    case "default":
      return `${agent}, rule 8: the default agent${familyNote}`;
    case "tokenless":
      return agent;
  }
}

function familyText(config: Config, family: Family): string {
  const owner = config.familyAgents.get(family);
  return `${labelled(family)}, ${owner === undefined ? "declared by no agent" : `declared by agent "${owner.name}"`}`;
}

function labelled(family: Family): string {
  return `${family} (${FAMILY_LABELS[family]})`;
}

/** Rows as aligned columns. */
function table(rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}
