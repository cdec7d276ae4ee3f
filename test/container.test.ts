// No Docker engine runs here: these checks keep the Dockerfile and docker-compose.yml in step
// with the commands CI and the README run, and with the code, so neither can rot unseen.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { loadConfigText } from "../src/config/load.js";

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
    expect(all(runStage, "COPY")).toContain("--from=build /app/dist ./dist");
  });

  test("runs as a non-root user, with the SQLite store on the volume it owns", () => {
    const user = last(runStage, "USER");
    expect(["", "root", "0"]).not.toContain(user);
    const volume = last(runStage, "VOLUME");
    expect(last(runStage, "WORKDIR")).toBe(volume);
    expect(all(runStage, "RUN").join(" ")).toContain(`chown ${user}:${user} ${volume}`);
    const shipped = /^(\S+) \/etc\/wecom-proxy\/wecom-proxy\.yaml/m.exec(all(runStage, "COPY").join("\n"))?.[1];
    expect(shipped).toBe("config/wecom-proxy.yaml");
    expect(read("Dockerfile")).toContain("WECOM_PROXY_CONFIG=/etc/wecom-proxy/wecom-proxy.yaml");
    const storeUrl = (parse(read(shipped ?? "")) as { store: { url: string } }).store.url;
    expect(storeUrl).toMatch(/^sqlite:\/\/\.\//); // relative: inside the working directory, the volume
  });

  test("checks health on /-/healthy at the port it exposes, where the proxy listens", () => {
    const port = last(runStage, "EXPOSE");
    expect(last(runStage, "HEALTHCHECK")).toContain(`http://127.0.0.1:${port}/-/healthy`);
    const shipped = parse(read("config/wecom-proxy.yaml")) as { listen: { port: number } };
    expect(String(shipped.listen.port)).toBe(port);
    expect(last(runStage, "CMD")).toContain('"--host", "0.0.0.0"');
    expect(last(runStage, "STOPSIGNAL")).toBe("SIGTERM");
  });
});

interface ComposeService {
  build: string;
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

  test("mounts a configuration that loads, reading every secret it declares from /run/secrets", () => {
    const mount = service.volumes.find((entry) => entry.includes(":/etc/wecom-proxy/wecom-proxy.yaml"));
    const configFile = mount?.split(":")[0]?.replace(/^\.\//, "") ?? "";
    const text = read(configFile);
    const dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-compose-"));
    try {
      for (const name of service.secrets) {
        expect(compose.secrets[name]?.file).toBe(`./secrets/${name}`);
        writeFileSync(path.join(dir, name), `value-of-${name}`);
      }
      const env = { WECOM_CORP_ID: "wwcompose0001", WECOM_NOTIFY_AGENTID: "1000002" };
      expect(Object.keys(service.environment).sort()).toEqual(Object.keys(env).sort());
      const loaded = loadConfigText(text.replaceAll("/run/secrets/", `${dir}/`), { env });
      expect(loaded.ok ? [] : loaded.problems).toEqual([]);
      const secretFiles = [...text.matchAll(/\/run\/secrets\/(\w+)/g)].map((match) => match[1]);
      expect(secretFiles.sort()).toEqual([...service.secrets].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("gives the proxy longer to stop than its shutdownGraceMs", () => {
    const seconds = Number(/^(\d+)s$/.exec(service.stop_grace_period)?.[1]);
    const grace = (parse(read("config/compose.yaml")) as { shutdownGraceMs: number }).shutdownGraceMs;
    expect(seconds * 1000).toBeGreaterThan(grace);
  });
});
