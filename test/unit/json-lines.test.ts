import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { pino } from "pino";
import { afterAll, describe, expect, test } from "vitest";
import { createLogger, jsonLines } from "../../src/log.js";
import { logAccess } from "../../src/server/access-log.js";

/** What jsonLines builds: pino's asynchronous destination. */
type SonicBoom = ReturnType<typeof pino.destination>;

const dir = mkdtempSync(path.join(os.tmpdir(), "json-lines-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the JSON lines destination", () => {
  test("lines arrive whole and in order, in batches and across them, multi-byte text included", async () => {
    const file = path.join(dir, "batches.log");
    const destination = jsonLines(file) as SonicBoom;
    await once(destination, "ready");
    const log = createLogger("info", destination);
    const long = "长".repeat(5000); // 15,000 bytes: one line longer than a batch
    for (let i = 0; i < 500; i += 1) {
      log.info({ i, text: i % 50 === 7 ? long : `企业微信 ✓ ${i}` }, "line");
      if (i % 100 === 0)
        logAccess(log, "info", { reqId: `r${i}`, method: "GET", url: "/cgi-bin/user/get?userid=张三", status: 200 });
    }
    destination.flushSync();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    const numbered = lines.map((line) => JSON.parse(line) as { i?: number; text?: string; reqId?: string });
    expect(numbered.filter((line) => line.i !== undefined).map((line) => line.i)).toEqual([...Array(500).keys()]);
    expect(numbered.find((line) => line.i === 57)?.text).toBe(long);
    expect(numbered.find((line) => line.i === 3)?.text).toBe("企业微信 ✓ 3");
    expect(numbered.filter((line) => line.reqId !== undefined)).toHaveLength(5);
  });

  test("a line shorter than a batch is written at the flush interval, not held for a full batch", async () => {
    const file = path.join(dir, "interval.log");
    const destination = jsonLines(file) as SonicBoom;
    await once(destination, "ready");
    const log = createLogger("info", destination);
    const written = once(destination, "write");
    log.info("alone");
    expect(readFileSync(file, "utf8")).toBe("");
    await written;
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({ msg: "alone" });
  });
});
