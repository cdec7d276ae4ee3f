import { loadConfigText, type Config, type LoadOptions } from "../../src/config/load.js";

/** The Config a YAML text loads to (no environment unless given); throws with the problems. */
export function configOf(yaml: string, options: LoadOptions = {}): Config {
  const loaded = loadConfigText(yaml, { env: {}, ...options });
  if (!loaded.ok) throw new Error(`expected a valid config, got:\n${loaded.problems.join("\n")}`);
  return loaded.config;
}

/** The problems a YAML text loads to; throws when it loads. */
export function problemsOf(yaml: string, options: LoadOptions = {}): string[] {
  const loaded = loadConfigText(yaml, { env: {}, ...options });
  if (loaded.ok) throw new Error("expected problems, the config loaded");
  return loaded.problems;
}
