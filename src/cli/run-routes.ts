// `wecom-proxy routes …`: argv → config → the table or one explanation on stdout; exit status.
import { loadConfigFile } from "../config/load.js";
import { describeRoutes, explainRequest, parseRoutesArgs, ROUTES_USAGE } from "./routes.js";

/** 0: printed; 2: bad arguments or a bad config (one line per problem on stderr). */
export function runRoutes(argv: readonly string[], env: NodeJS.ProcessEnv): number {
  const args = parseRoutesArgs(argv);
  if (typeof args === "string") {
    process.stderr.write(`wecom-proxy routes: ${args}\n`);
    return args === ROUTES_USAGE ? 0 : 2;
  }
  const configFile = args.configFile ?? env["WECOM_PROXY_CONFIG"] ?? "config/wecom-proxy.yaml";
  const loaded = loadConfigFile(configFile, { env });
  if (!loaded.ok) {
    for (const problem of loaded.problems) process.stderr.write(`wecom-proxy: config ${configFile}: ${problem}\n`);
    return 2;
  }
  const text = args.explain === undefined ? describeRoutes(loaded.config) : explainRequest(loaded.config, args.explain);
  process.stdout.write(text);
  return 0;
}
