import path from "node:path";
import { parseArgs } from "node:util";
import { LOG_LEVELS } from "../config/schema.js";
import { packageRoot, packageVersion } from "./package-info.js";

export interface CliArgs {
  readonly configFile: string;
  readonly host: string | undefined;
  readonly port: number | undefined;
  /** Written with the process id once listening, removed at exit. */
  readonly pidFile: string | undefined;
}

/** Not an error: what --help and --version print on stdout, exit status 0. */
export interface CliInfo {
  readonly info: string;
}
export const DEFAULT_CONFIG = "config/wecom-proxy.yaml";
export const USAGE = "usage: wecom-proxy [--config FILE] [--host H] [--port N] [--pid-file FILE] | routes | doctor";

export function helpText(): string {
  const docs = path.join(packageRoot(), "docs", "README.md");
  return `wecom-proxy ${packageVersion()}: a token-injecting, self-healing reverse proxy for the WeCom server API

${USAGE}

options:
  -c, --config FILE    the config file (default: $WECOM_PROXY_CONFIG, else ${DEFAULT_CONFIG})
      --host HOST      listen on HOST, not listen.host (beyond loopback: needs clients:)
  -p, --port PORT      listen on PORT instead of listen.port (0: any free port)
      --pid-file FILE  write the process id to FILE once listening, for kill -HUP "$(cat FILE)"
  -h, --help           print this help
  -v, --version        print the version

environment:
  WECOM_PROXY_CONFIG   the configuration file when --config is absent
  WECOM_PROXY_HOST     the listen host when --host is absent (the container image sets it)
  WECOM_PROXY_PORT     the listen port when --port is absent (the image's HEALTHCHECK uses it)
  LOG_LEVEL            overrides log.level: ${LOG_LEVELS.join(" ")}
  HTTPS_PROXY NO_PROXY egress through a forward proxy, when upstream.proxy is not set

signals: SIGHUP reloads the configuration; SIGTERM, SIGINT finish requests in flight and stop.
no WeCom account at hand? npm run sandbox runs the proxy in front of a local fake WeCom.
docs: ${docs}
`;
}

/** argv → options, --help/--version text, or a message for the user (an error). */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliArgs | CliInfo | string {
  let values: { config?: string; host?: string; port?: string; "pid-file"?: string; help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string", short: "p" },
        "pid-file": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return `${(error as Error).message}\n${USAGE} (--help for more)`;
  }
  if (values.help === true) return { info: helpText() };
  if (values.version === true) return { info: `wecom-proxy ${packageVersion()}\n` };
  const port = portOf(values.port, "--port") ?? portOf(env["WECOM_PROXY_PORT"], "$WECOM_PROXY_PORT");
  if (typeof port === "string") return port;
  const logLevel = env["LOG_LEVEL"];
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    return `$LOG_LEVEL: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`;
  }
  return {
    configFile: values.config ?? env["WECOM_PROXY_CONFIG"] ?? DEFAULT_CONFIG,
    host: values.host ?? (env["WECOM_PROXY_HOST"] || undefined),
    port,
    pidFile: values["pid-file"],
  };
}

/** A port number, a problem naming `where`, or undefined when not given. */
function portOf(text: string | undefined, where: string): number | string | undefined {
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,5}$/.test(text)) return `${where}: "${text}" is not a port number`;
  const port = Number(text);
  return port > 65535 ? `${where}: ${port} is above 65535` : port;
}
