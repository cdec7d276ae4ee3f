// Files the configuration names (the file itself, every *File) are small regular files, read
// without blocking: a FIFO, a device, a directory or a huge file is one problem line, at start
// and at a reload, and a reload that finds one leaves the running configuration serving.
// A YAML alias bomb is one problem line too, never a stack trace.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { stringify } from "yaml";
import { loadConfigFile } from "../src/config/load.js";
import { FakeWeCom } from "../src/sandbox/fake-wecom.js";
import { getJson } from "./helpers/http.js";
import { ProxyProcess } from "./helpers/proxy-process.js";

const CORP = "wwconfigfiles0001";
const SECRET = randomBytes(24).toString("base64url");

/** 9^9 expansions of a 1-element list: what yaml's alias limit exists for. */
const ALIAS_BOMB = [
  'a: &a ["lol"]',
  ...["b", "c", "d", "e", "f", "g", "h", "i"].map(
    (name, index) => `${name}: &${name} [${Array(9).fill(`*${"abcdefghi"[index]}`).join(", ")}]`,
  ),
].join("\n");

let dir = "";
let sandbox: FakeWeCom;
let proxy: ProxyProcess | undefined;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-files-"));
  sandbox = new FakeWeCom({ apps: [{ corpid: CORP, secret: SECRET }] });
  await sandbox.listen();
});

afterEach(async () => {
  await proxy?.kill();
  proxy = undefined;
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(secretFile: string): Record<string, unknown> {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    upstream: { url: sandbox.url, timeoutMs: 8000 },
    store: { url: "memory://" },
    corpid: CORP,
    agents: { contacts: { secretFile } },
    defaultAgent: "contacts",
  };
}

function writeConfig(value: Record<string, unknown> | string): string {
  const file = path.join(dir, "wecom-proxy.yaml");
  writeFileSync(file, typeof value === "string" ? value : stringify(value));
  return file;
}

function fifo(name: string): string {
  const file = path.join(dir, name);
  execFileSync("mkfifo", [file]);
  return file;
}

describe("secretFile and the other *File fields", () => {
  test("a FIFO, /dev/zero, a directory, a huge file and a multi-line file are one problem each", () => {
    const huge = path.join(dir, "huge");
    writeFileSync(huge, "x".repeat(1 << 20));
    const lines = path.join(dir, "lines");
    writeFileSync(lines, "root:x:0:0\ndaemon:x:1:1\n");
    const subdir = path.join(dir, "subdir");
    mkdirSync(subdir);
    const file = writeConfig({
      ...config(fifo("fifo")),
      agents: {
        a: { secretFile: path.join(dir, "fifo") },
        b: { secretFile: "/dev/zero" },
        c: { secretFile: subdir },
        d: { secretFile: huge },
        e: { secretFile: lines },
      },
      admin: { keyFile: path.join(dir, "fifo") },
      defaultAgent: "a",
    });
    const loaded = loadConfigFile(file);
    expect(loaded.ok).toBe(false);
    expect(loaded.ok ? [] : loaded.problems).toEqual([
      `agents.a.secretFile: ${path.join(dir, "fifo")} is a FIFO, not a regular file`,
      "agents.b.secretFile: /dev/zero is a device, not a regular file",
      `agents.c.secretFile: ${subdir} is a directory, not a regular file`,
      `agents.d.secretFile: ${huge} is larger than 4096 bytes`,
      `agents.e.secretFile: ${lines} holds several lines; it must hold the value alone`,
      `admin.keyFile: ${path.join(dir, "fifo")} is a FIFO, not a regular file`,
    ]);
    expect(JSON.stringify(loaded)).not.toContain("root:x");
  });

  test("the configuration file itself may not be a FIFO", () => {
    expect(loadConfigFile(fifo("config.yaml"))).toEqual({
      ok: false,
      problems: [`${path.join(dir, "config.yaml")} is a FIFO, not a regular file`],
    });
  });

  test("at start, a FIFO as secretFile is a problem line and exit status 2, not a hang", async () => {
    proxy = new ProxyProcess(writeConfig(config(fifo("secret"))));
    expect(await proxy.exited()).toEqual({ code: 2, signal: null });
    expect(proxy.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/config .*: agents\.contacts\.secretFile: .*secret is a FIFO, not a regular file$/),
    ]);
  });

  test("at a reload, a FIFO is a rejected reload and the old configuration keeps serving", async () => {
    const secretFile = path.join(dir, "secret");
    writeFileSync(secretFile, `${SECRET}\n`);
    proxy = new ProxyProcess(writeConfig(config(secretFile)));
    const url = await proxy.listening();
    unlinkSync(secretFile);
    fifo("secret");
    proxy.signal("SIGHUP");
    const rejected = await proxy.waitForLine((line) => line["msg"] === "config reload rejected", "the rejection");
    expect(rejected["problem"]).toBe(`agents.contacts.secretFile: ${secretFile} is a FIFO, not a regular file`);
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    expect(proxy.text()).not.toContain("config reload failed");
  });
});

describe("a YAML alias bomb", () => {
  test("loads to one problem line", () => {
    expect(loadConfigFile(writeConfig(`${stringify(config("/dev/null"))}${ALIAS_BOMB}\n`))).toEqual({
      ok: false,
      problems: [expect.stringMatching(/^YAML: .*alias/i)],
    });
  });

  test("5000 nested brackets are one problem line, not an exhausted stack or heap", () => {
    const text = `${"[".repeat(5000)}${"]".repeat(5000)}`;
    expect(loadConfigFile(writeConfig(text))).toEqual({
      ok: false,
      problems: [expect.stringMatching(/^YAML: nested deeper/)],
    });
  });

  test("at start is one line on stderr and exit status 2", async () => {
    proxy = new ProxyProcess(writeConfig(ALIAS_BOMB));
    expect(await proxy.exited()).toEqual({ code: 2, signal: null });
    expect(proxy.stderr.trim().split("\n")).toEqual([expect.stringMatching(/: YAML: .*alias/i)]);
  });

  test("at a reload is one rejected line without a stack, and the old configuration serves", async () => {
    const secretFile = path.join(dir, "secret");
    writeFileSync(secretFile, SECRET);
    proxy = new ProxyProcess(writeConfig(config(secretFile)));
    const url = await proxy.listening();
    writeConfig(ALIAS_BOMB);
    proxy.signal("SIGHUP");
    await proxy.waitForLine((line) => line["msg"] === "config reload rejected", "the rejection");
    expect((await getJson(`${url}/cgi-bin/user/get?userid=zhangsan`))["errcode"]).toBe(0);
    const rejections = (await proxy.loggedLines()).filter((line) => line["msg"] === "config reload rejected");
    expect(rejections).toEqual([expect.objectContaining({ problem: expect.stringMatching(/^YAML: .*alias/i) })]);
    expect(proxy.text()).not.toMatch(/config reload failed|\n\s+at /);
  });
});
