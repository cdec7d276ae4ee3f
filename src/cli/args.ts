import { parseArgs } from "node:util";
import { LOG_LEVELS } from "../config/schema.js";

export interface CliArgs {
  readonly configFile: string;
  readonly host: string | undefined;
  readonly port: number | undefined;
}

export const USAGE =
  "usage: wecom-proxy [--config FILE] [--host HOST] [--port PORT] | wecom-proxy routes --help | wecom-proxy doctor [--config FILE]";

/** argv → options, or a message for the user. */
export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliArgs | string {
  let values: { config?: string; host?: string; port?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        host: { type: "string" },
        port: { type: "string", short: "p" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return `${(error as Error).message}\n${USAGE}`;
  }
  if (values.help === true) return USAGE;
  if (values.port !== undefined && !/^\d{1,5}$/.test(values.port))
    return `--port: "${values.port}" is not a port number`;
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && port > 65535) return `--port: ${port} is above 65535`;
  const logLevel = env["LOG_LEVEL"];
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    return `$LOG_LEVEL: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`;
  }
  return {
    configFile: values.config ?? env["WECOM_PROXY_CONFIG"] ?? "config/wecom-proxy.yaml",
    host: values.host,
    port,
  };
}
