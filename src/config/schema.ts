// The configuration file's shape (DESIGN §3). No HTTP here, no file I/O.
import { z } from "zod";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** YAML and ${VAR} give numbers as strings sometimes ("8080"); accept plain digits. */
const fromDigits = (value: unknown): unknown =>
  typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;

const port = z.preprocess(fromDigits, z.number().int().min(0).max(65535));
const positiveInt = z.preprocess(fromDigits, z.number().int().positive());

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === "";
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL with no query");

const storeUrl = z
  .string()
  .regex(/^(memory:\/\/|sqlite:\/\/.+)$/, "must be memory:// or sqlite://PATH");

const urlPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/, "must start with / and hold only plain path characters")
  .refine((value) => !/(^|\/)\.\.?(\/|$)|\/\//.test(value), "must be normalized (no //, . or ..)");

const agentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be letters, digits, _ . - (starting with a letter or digit)");

const AgentSchema = z
  .strictObject({
    corpid: z.string().min(1).optional(),
    agentid: z.preprocess(fromDigits, z.number().int().nonnegative()).optional(),
    secret: z.string().min(1).optional(),
    secretFile: z.string().min(1).optional(),
  })
  .superRefine((agent, ctx) => {
    if ((agent.secret === undefined) === (agent.secretFile === undefined)) {
      ctx.addIssue({ code: "custom", path: ["secret"], message: "give exactly one of secret or secretFile" });
    }
  });

const RouteSchema = z
  .strictObject({ path: urlPath.optional(), mount: urlPath.optional(), agent: z.string() })
  .superRefine((route, ctx) => {
    if ((route.path === undefined) === (route.mount === undefined)) {
      ctx.addIssue({ code: "custom", path: [], message: "give exactly one of path or mount" });
    }
    for (const key of ["path", "mount"] as const) {
      if (route[key]?.startsWith("/-/")) {
        ctx.addIssue({ code: "custom", path: [key], message: "/-/ is reserved for the proxy's own pages" });
      }
    }
    if (route.mount !== undefined && (route.mount === "/" || route.mount.endsWith("/"))) {
      ctx.addIssue({ code: "custom", path: ["mount"], message: "must not be / or end with /" });
    }
  });

export const FileConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({ host: z.string().min(1).default("127.0.0.1"), port: port.default(8080) })
      .prefault({}),
    upstream: z
      .strictObject({
        url: httpUrl.default("https://qyapi.weixin.qq.com"),
        timeoutMs: positiveInt.default(15000),
      })
      .prefault({}),
    store: z.strictObject({ url: storeUrl.default("sqlite://./data/tokens.sqlite") }).prefault({}),
    limits: z.strictObject({ maxBodyBytes: positiveInt.default(26214400) }).prefault({}),
    log: z.strictObject({ level: z.enum(LOG_LEVELS).default("info") }).prefault({}),
    corpid: z.string().min(1).optional(),
    agents: z.record(agentName, AgentSchema),
    routes: z.array(RouteSchema).default([]),
    defaultAgent: z.string().optional(),
  })
  .superRefine((config, ctx) => {
    const names = Object.keys(config.agents);
    if (names.length === 0) ctx.addIssue({ code: "custom", path: ["agents"], message: "name at least one agent" });
    const seenAgentids = new Map<number, string>();
    for (const [name, agent] of Object.entries(config.agents)) {
      if (agent.corpid === undefined && config.corpid === undefined) {
        ctx.addIssue({ code: "custom", path: ["agents", name, "corpid"], message: "is required (or set a top-level corpid)" });
      }
      if (agent.agentid === undefined) continue;
      const other = seenAgentids.get(agent.agentid);
      if (other !== undefined) {
        ctx.addIssue({ code: "custom", path: ["agents", name, "agentid"], message: `${agent.agentid} is also agent "${other}"'s` });
      }
      seenAgentids.set(agent.agentid, name);
    }
    config.routes.forEach((route, index) => {
      if (!names.includes(route.agent)) {
        ctx.addIssue({ code: "custom", path: ["routes", index, "agent"], message: `names unknown agent "${route.agent}"` });
      }
    });
    if (config.defaultAgent !== undefined && !names.includes(config.defaultAgent)) {
      ctx.addIssue({ code: "custom", path: ["defaultAgent"], message: `names unknown agent "${config.defaultAgent}"` });
    }
  });

export type FileConfig = z.infer<typeof FileConfigSchema>;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One line per problem: "field.path: what is wrong". */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => `${[...at, key].join(".")}: unknown key`);
    }
    const missing = issue.code === "invalid_type" && issue.input === undefined;
    return [`${at.join(".") || "(top level)"}: ${missing ? "is required" : issue.message}`];
  });
}
