// No Docker engine runs here: these checks keep the Dockerfile and docker-compose.yml in step
// with the commands CI and the README run, and with the code, so neither can rot unseen.
import { spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { exposureProblems } from "../src/config/exposure.js";
import { loadConfigText } from "../src/config/load.js";
import { startStack } from "./helpers/start-stack.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** The Dockerfile's stages, each a list of instructions (continuation lines joined). */
function dockerfileStages(): Instruction[][] {
  const text = read("Dockerfile").replace(/\\\n\s*/g, " ");
  const stages: Instruction[][] = [];
  for (const line of text.split("\n")) {
    const match = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (match === null) continue;
    const instruction = { keyword: match[1] as string, args: (match[2] as string).trim() };
    if (instruction.keyword === "FROM") stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

const [buildStage = [], runStage = []] = dockerfileStages();
const all = (stage: Instruction[], keyword: string) => stage.filter((i) => i.keyword === keyword).map((i) => i.args);
const last = (stage: Instruction[], keyword: string) => all(stage, keyword).at(-1) ?? "";
const packageJson = JSON.parse(read("package.json")) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
};

describe("the Dockerfile", () => {
  test("has a build stage and a run stage", () => {
    expect(dockerfileStages()).toHaveLength(2);
  });

  test("builds with exactly the install command of CI and the README, then drops dev dependencies", () => {
    expect(all(buildStage, "RUN")).toEqual(["npm ci && npm prune --omit=dev"]);
    expect(read(".ci/run").split("\n")).toContain("npm ci");
    expect(read("README.md")).toMatch(/^npm ci\s+# installs and builds/m);
    expect(packageJson.scripts["prepare"]).toBe("npm run build");
  });

  test("copies every file the build reads, and .dockerignore keeps none of them out", () => {
    const copied = all(buildStage, "COPY").flatMap((args) => args.split(/\s+/).slice(0, -1));
    const tsconfigBuild = JSON.parse(read("tsconfig.build.json")) as { extends: string; include: string[] };
    const needed = ["package.json", "package-lock.json", "tsconfig.build.json", path.basename(tsconfigBuild.extends)];
    for (const file of [...needed, ...tsconfigBuild.include]) {
      expect(copied, `${file} is read by npm ci / npm run build`).toContain(file);
      expect(existsSync(path.join(root, file)), `${file} exists`).toBe(true);
    }
    const ignored = read(".dockerignore").split("\n").filter(Boolean);
    for (const file of copied) expect(ignored).not.toContain(file);
  });

  test("starts the file that npm start and the package's bin run", () => {
    const started = /node (\S+)/.exec(packageJson.scripts["start"] ?? "")?.[1];
    expect(started).toBe(packageJson.bin["wecom-proxy"]);
    expect(last(runStage, "CMD")).toContain(`"/app/${started}"`);
    expect(all(runStage, "COPY")).toContain("--from=build /app/dist/src ./dist/src");
  });

  test("leaves the benchmarks out of the runtime image", () => {
    expect(all(runStage, "COPY").filter((args) => /bench|\/app\/dist(\s|$)/.test(args))).toEqual([]);
  });

  test("runs a supported Node LTS, one that package.json's engines admits", () => {
    const major = (from: string) => Number(/^node:(\d+)/.exec(from)?.[1]);
    const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node;
    for (const from of [...all(buildStage, "FROM"), ...all(runStage, "FROM")]) {
      expect([22, 24]).toContain(major(from));
      expect(engines).toContain(`^${major(from)}`);
    }
  });

  test("runs as a non-root user, with the SQLite store on the volume it owns", () => {
    const user = last(runStage, "USER");
    expect(["", "root", "0"]).not.toContain(user);
    const volume = last(runStage, "VOLUME");
    expect(last(runStage, "WORKDIR")).toBe(volume);
    expect(all(runStage, "RUN").join(" ")).toContain(`chown ${user}:${user} ${volume}`);
    const shipped = /^(\S+) \/etc\/wecom-proxy\/wecom-proxy\.yaml/m.exec(all(runStage, "COPY").join("\n"))?.[1];
    expect(shipped).toBe("config/container.yaml");
    expect(read("Dockerfile")).toContain("WECOM_PROXY_CONFIG=/etc/wecom-proxy/wecom-proxy.yaml");
    const storeUrl = (parse(read(shipped ?? "")) as { store: { url: string } }).store.url;
    expect(storeUrl).toMatch(/^sqlite:\/\/\.\//); // relative: inside the working directory, the volume
  });

  test("listens on every interface at the port it exposes, and its health check follows that port", () => {
    const port = last(runStage, "EXPOSE");
    const env = last(runStage, "ENV");
    expect(env).toContain("WECOM_PROXY_HOST=0.0.0.0");
    expect(env).toContain(`WECOM_PROXY_PORT=${port}`);
    const shipped = parse(read("config/container.yaml")) as { listen: { port: number } };
    expect(String(shipped.listen.port)).toBe(port);
    // bash, not a Node process per check; the script itself is run against a proxy below.
    expect(last(runStage, "HEALTHCHECK")).toMatch(/CMD \["bash", "\/app\/healthcheck\.sh"\]$/);
    expect(all(runStage, "COPY")).toContain("deploy/healthcheck.sh /app/healthcheck.sh");
    expect(last(runStage, "STOPSIGNAL")).toBe("SIGTERM");
  });
});

interface ComposeService {
  build: string;
  depends_on?: Record<string, { condition: string }>;
  environment: Record<string, string>;
  volumes: string[];
  secrets: string[];
  ports: string[];
  stop_grace_period: string;
}

const compose = parse(read("docker-compose.yml")) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
};
const service = compose.services["wecom-proxy"] as ComposeService;

/** Loads `configFile` the way the container would: every /run/secrets/NAME a file with a value. */
function loadWithSecrets(configFile: string, secrets: readonly string[], env: Record<string, string>) {
  const text = read(configFile);
  const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-compose-"));
  try {
    for (const name of secrets) writeFileSync(path.join(dir, name), `value-of-${name}`);
    const secretFiles = [...text.matchAll(/\/run\/secrets\/(\w+)/g)].map((match) => match[1]);
    expect(secretFiles.sort(), `${configFile} reads exactly the service's secrets`).toEqual([...secrets].sort());
    const loaded = loadConfigText(text.replaceAll("/run/secrets/", `${dir}/`), { env });
    if (!loaded.ok) throw new Error(loaded.problems.join("\n"));
    return loaded.config;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mountedConfig = (of: ComposeService) =>
  of.volumes
    .find((entry) => entry.includes(":/etc/wecom-proxy/wecom-proxy.yaml"))
    ?.split(":")[0]
    ?.replace(/^\.\//, "") ?? "";
const ENV = { WECOM_CORP_ID: "wwcompose0001", WECOM_NOTIFY_AGENTID: "1000002" };

describe("docker-compose.yml", () => {
  test("builds this Dockerfile and keeps the store on a named volume at the image's volume", () => {
    expect(service.build).toBe(".");
    const volume = last(runStage, "VOLUME");
    const data = service.volumes.find((entry) => entry.endsWith(`:${volume}`));
    expect(data).toBeDefined();
    expect(Object.keys(compose.volumes)).toContain(data?.split(":")[0]);
  });

  test("publishes the port on the loopback address only", () => {
    expect(service.ports).toEqual([`127.0.0.1:8080:${last(runStage, "EXPOSE")}`]);
  });

  test("mounts the image's configuration, which loads reading every secret from /run/secrets", () => {
    expect(mountedConfig(service)).toBe("config/container.yaml");
    for (const name of service.secrets) expect(compose.secrets[name]?.file).toBe(`./secrets/${name}`);
    expect(Object.keys(service.environment).sort()).toEqual(Object.keys(ENV).sort());
    loadWithSecrets(mountedConfig(service), service.secrets, ENV);
  });

  test("names clients and an admin key, so the proxy starts on 0.0.0.0", () => {
    const config = loadWithSecrets(mountedConfig(service), service.secrets, ENV);
    expect(config.clients?.size).toBeGreaterThan(0);
    expect(exposureProblems(config, "0.0.0.0")).toEqual([]);
  });

  test("gives the proxy longer to stop than its shutdownGraceMs", () => {
    const seconds = Number(/^(\d+)s$/.exec(service.stop_grace_period)?.[1]);
    const grace = (parse(read("config/container.yaml")) as { shutdownGraceMs: number }).shutdownGraceMs;
    expect(seconds * 1000).toBeGreaterThan(grace);
  });
});

describe("docker-compose.replicas.yml", () => {
  const replicas = parse(read("docker-compose.replicas.yml"), { merge: true }) as {
    services: Record<string, ComposeService & { healthcheck?: unknown; command?: string[] }>;
    secrets: Record<string, { file: string }>;
  };
  const proxies = Object.entries(replicas.services).filter(([name]) => name !== "redis");

  test("starts the replicas once Redis answers its health check", () => {
    expect(proxies.length).toBeGreaterThanOrEqual(2);
    expect(replicas.services["redis"]?.healthcheck).toBeDefined();
    for (const [, proxy] of proxies) expect(proxy.depends_on).toEqual({ redis: { condition: "service_healthy" } });
  });

  test("keeps every secret in a file, Redis's password included, and none in the environment", () => {
    for (const [name, { file }] of Object.entries(replicas.secrets)) expect(file).toBe(`./secrets/${name}`);
    expect(replicas.services["redis"]?.secrets).toEqual(["redis_password"]);
    for (const [, proxy] of proxies) expect(Object.keys(proxy.environment).sort()).toEqual(Object.keys(ENV).sort());
    expect(read("docker-compose.replicas.yml")).not.toMatch(/--requirepass/);
  });

  test("mounts a configuration that loads, shares Redis, and passes the open-relay guard", () => {
    for (const [, proxy] of proxies) {
      const config = loadWithSecrets(mountedConfig(proxy), proxy.secrets, ENV);
      expect(config.store.url).toBe("redis://:value-of-redis_password@redis:6379/0");
      expect(exposureProblems(config, "0.0.0.0")).toEqual([]);
    }
  });
});

describe("the image's health check script", () => {
  const check = (port: number) =>
    new Promise<number | null>((resolve) => {
      const child = spawn("bash", [path.join(root, "deploy/healthcheck.sh")], {
        env: { ...process.env, WECOM_PROXY_PORT: String(port) },
        stdio: "ignore",
      });
      child.once("close", resolve);
    });

  test("passes while the proxy serves /-/healthy on $WECOM_PROXY_PORT, and fails once it stops", async () => {
    const stack = await startStack();
    const port = Number(new URL(stack.proxyUrl).port);
    try {
      expect(await check(port)).toBe(0);
    } finally {
      await stack.close();
    }
    expect(await check(port)).not.toBe(0);
  });

  test("fails when /-/healthy answers anything but 200", async () => {
    const server = http.createServer((_req, res) => res.writeHead(503).end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      expect(await check((server.address() as AddressInfo).port)).not.toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
