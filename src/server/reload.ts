// SIGHUP: read the configuration file again. A valid one takes over for new requests while
// requests in flight finish on the old one; a broken one is reported, one log line per
// problem, and the running configuration keeps serving.
import { loadConfigFile, type Config } from "../config/load.js";
import { logLevelFrom, type Logger } from "../log.js";
import { InvalidEgressProxy } from "../proxy/egress-proxy.js";
import { createRuntime, type ProxyDeps, type Runtime } from "./create-proxy.js";
import type { RunningServer } from "./lifecycle.js";

export interface ReloadContext {
  readonly configFile: string;
  readonly running: RunningServer;
  readonly deps: ProxyDeps;
  /** Problems the running listener would have with the new configuration (e.g. exposure.ts). */
  readonly check?: (config: Config) => string[];
}

/** true when the new configuration took over. */
export function reloadConfig({ configFile, running, deps, check }: ReloadContext): boolean {
  const { log } = deps;
  const previous = running.runtime;
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) return rejected(log, previous, configFile, loaded.problems);
  const refused = check?.(loaded.config) ?? [];
  if (refused.length > 0) return rejected(log, previous, configFile, refused);
  let next: Runtime;
  try {
    next = createRuntime(loaded.config, deps, previous);
  } catch (error) {
    if (error instanceof InvalidEgressProxy) return rejected(log, previous, configFile, [error.message]);
    throw error;
  }
  log.level = logLevelFrom(loaded.config.log.level);
  warnAboutRestartOnlyChanges(log, previous.config, loaded.config);
  running.replaceRuntime(next).catch((error: unknown) => {
    // The new configuration serves already; failing to release the old one only leaks it.
    log.error({ err: error }, "could not release the previous configuration's resources");
  });
  next.instruments.reloaded("ok");
  log.info(
    {
      file: configFile,
      agents: [...loaded.config.agents.keys()],
      store: next.store.description,
      storeKept: next.store === previous.store,
      egress: next.upstream.egress,
    },
    "config reloaded",
  );
  return true;
}

function rejected(log: Logger, running: Runtime, file: string, problems: readonly string[]): false {
  for (const problem of problems) log.error({ file, problem }, "config reload rejected");
  running.instruments.reloaded("rejected");
  return false;
}

const LISTENER_LIMITS = [
  "headersTimeoutMs",
  "requestTimeoutMs",
  "keepAliveTimeoutMs",
  "maxHeaderBytes",
  "maxConnections",
] as const;

/** The listener is bound once, with its limits; log.format picks the destination once. */
function warnAboutRestartOnlyChanges(log: Logger, before: Config, after: Config): void {
  const changed = [
    before.listen.host !== after.listen.host || before.listen.port !== after.listen.port ? "listen" : "",
    before.log.format !== after.log.format ? "log.format" : "",
    LISTENER_LIMITS.some((key) => before.limits[key] !== after.limits[key]) ? "limits (listener)" : "",
  ].filter((key) => key !== "");
  if (changed.length > 0) log.warn({ keys: changed }, "these settings take effect at the next restart");
}
