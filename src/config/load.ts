// Configuration file → validated, frozen Config, or every problem found (DESIGN §2, §3).
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseDocument } from "yaml";
import { FileConfigSchema, describeIssues, type FileConfig, type LogLevel } from "./schema.js";
import { Secret } from "./secret.js";

export interface AgentConfig {
  readonly name: string;
  readonly corpid: string;
  readonly agentid: number | undefined;
  readonly secret: Secret;
}

export interface RouteConfig {
  readonly prefix: string;
  readonly agent: AgentConfig;
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number };
  readonly upstream: { readonly url: URL; readonly timeoutMs: number };
  readonly store: { readonly url: string };
  readonly limits: { readonly maxBodyBytes: number };
  readonly log: { readonly level: LogLevel };
  readonly agents: ReadonlyMap<string, AgentConfig>;
  /** Longest prefix first. */
  readonly routes: readonly RouteConfig[];
  /** Longest prefix first. */
  readonly mounts: readonly RouteConfig[];
  readonly defaultAgent: AgentConfig | undefined;
}

export type LoadResult = { ok: true; config: Config } | { ok: false; problems: string[] };

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory that relative secretFile paths start from. */
  baseDir?: string;
}

export function loadConfigFile(file: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return { ok: false, problems: [`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`] };
  }
  return loadConfigText(text, { baseDir: path.dirname(path.resolve(file)), ...options });
}

export function loadConfigText(text: string, options: LoadOptions = {}): LoadResult {
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    return { ok: false, problems: document.errors.map((e) => `YAML line ${e.linePos?.[0]?.line ?? "?"}: ${e.code}`) };
  }
  const problems: string[] = [];
  const raw = interpolate(document.toJS(), [], options.env ?? process.env, problems) ?? {};
  const fileSecrets = readSecretFiles(raw, options.baseDir ?? process.cwd(), problems);
  const parsed = FileConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    // A field whose ${VAR} is unset is already reported; its emptiness would only repeat it.
    const reported = new Set(problems.map(fieldOf));
    problems.push(...describeIssues(parsed.error).filter((line) => !reported.has(fieldOf(line))));
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, config: build(parsed.data, fileSecrets) };
}

const fieldOf = (problem: string): string => problem.slice(0, problem.indexOf(": "));

/** Replaces ${NAME} in every string scalar; an unset NAME is a problem at that field. */
function interpolate(value: unknown, at: (string | number)[], env: NodeJS.ProcessEnv, problems: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const found = env[name];
      if (found === undefined) problems.push(`${at.join(".")}: environment variable ${name} is not set`);
      return found ?? "";
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, [...at, index], env, problems));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, [...at, key], env, problems)]),
    );
  }
  return value;
}

/** Reads every agents.NAME.secretFile, before validation, so its problems join the others. */
function readSecretFiles(raw: unknown, baseDir: string, problems: string[]): Map<string, Secret> {
  const secrets = new Map<string, Secret>();
  const agents = (raw as { agents?: unknown }).agents;
  if (agents === null || typeof agents !== "object") return secrets;
  for (const [name, agent] of Object.entries(agents)) {
    const secretFile = (agent as { secretFile?: unknown } | null)?.secretFile;
    if (typeof secretFile !== "string" || secretFile === "") continue;
    const file = path.resolve(baseDir, secretFile);
    try {
      const value = readFileSync(file, "utf8").trim();
      if (value === "") problems.push(`agents.${name}.secretFile: ${file} is empty`);
      secrets.set(name, new Secret(value));
    } catch (error) {
      problems.push(`agents.${name}.secretFile: ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }
  }
  return secrets;
}

function build(file: FileConfig, fileSecrets: Map<string, Secret>): Config {
  const agents = new Map<string, AgentConfig>();
  for (const [name, agent] of Object.entries(file.agents)) {
    agents.set(
      name,
      Object.freeze({
        name,
        corpid: agent.corpid ?? file.corpid ?? "",
        agentid: agent.agentid,
        secret: agent.secret === undefined ? (fileSecrets.get(name) as Secret) : new Secret(agent.secret),
      }),
    );
  }
  const byLongestPrefix = (a: RouteConfig, b: RouteConfig) => b.prefix.length - a.prefix.length;
  const routesOf = (key: "path" | "mount") =>
    Object.freeze(
      file.routes
        .flatMap((route) => {
          const prefix = route[key];
          return prefix === undefined ? [] : [{ prefix, agent: agents.get(route.agent) as AgentConfig }];
        })
        .sort(byLongestPrefix),
    );
  return Object.freeze({
    listen: Object.freeze({ ...file.listen }),
    upstream: Object.freeze({ url: new URL(file.upstream.url), timeoutMs: file.upstream.timeoutMs }),
    store: Object.freeze({ ...file.store }),
    limits: Object.freeze({ ...file.limits }),
    log: Object.freeze({ ...file.log }),
    agents,
    routes: routesOf("path"),
    mounts: routesOf("mount"),
    defaultAgent: file.defaultAgent === undefined ? undefined : agents.get(file.defaultAgent),
  });
}
