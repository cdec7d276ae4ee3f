// /-/status in a real browser: Debian's chromium, driven by playwright-core (never a
// downloaded browser). WECOM_PROXY_STATUS_SCREENSHOT=FILE keeps a screenshot of the page.
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { describe, expect, test } from "vitest";
import { request } from "./helpers/http.js";
import { startStack } from "./helpers/start-stack.js";

const CHROMIUM = findChromium();
const ADMIN_KEY = "browser-admin-key-0123456789abcdef";

if (CHROMIUM === undefined && process.env["WECOM_PROXY_TEST_REQUIRE_CHROMIUM"] === "1") {
  throw new Error("no chromium on PATH, and WECOM_PROXY_TEST_REQUIRE_CHROMIUM=1 says the browser test must run");
}

describe.skipIf(CHROMIUM === undefined)("/-/status in Chromium", () => {
  test("loads with no console error, readable without JavaScript, and shows a token refresh and a 60020 hint after they happen", async () => {
    const stack = await startStack({
      configure: (config) => (config["admin"] = { key: ADMIN_KEY }),
      // The partner app only takes calls from an address the proxy does not have: WeCom's 60020.
      apps: (apps) => apps.splice(2, 1, { ...apps[2]!, trustedIps: ["203.0.113.7"] }),
    });
    const profile = mkdtempSync(path.join(os.tmpdir(), "wecom-proxy-chromium-"));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      javaScriptEnabled: false,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      extraHTTPHeaders: { authorization: `Bearer ${ADMIN_KEY}` },
      viewport: { width: 1200, height: 760 },
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      page.setDefaultTimeout(5000);
      const problems: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
      });
      page.on("pageerror", (error) => problems.push(error.message));
      page.on("requestfailed", (failed) => problems.push(`${failed.url()}: ${failed.failure()?.errorText}`));
      const requested: string[] = [];
      page.on("request", (sent) => requested.push(sent.url()));

      const first = await page.goto(`${stack.proxyUrl}/-/status`);
      expect(first?.status()).toBe(200);
      expect(await page.title()).toBe("wecom-proxy status");
      const contacts = page.locator("tr", { has: page.locator("strong", { hasText: /^contacts$/ }) });
      const partner = page.locator("tr", { has: page.locator("strong", { hasText: /^partner$/ }) });
      await expect.poll(() => contacts.innerText()).toContain("none cached");
      expect(await partner.innerText()).not.toContain("60020");

      const refreshed = await request(`${stack.proxyUrl}/-/tokens/contacts/refresh`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      expect(refreshed.status).toBe(200);
      await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=zhangsan`);
      const fenced = await request(`${stack.proxyUrl}/cgi-bin/user/get?userid=lisi`, {
        headers: { "x-wecom-agent": "partner" },
      });
      expect(fenced.json()).toMatchObject({ errcode: 60020 });
      stack.sandbox.addFault({ path: "/cgi-bin/department/list", errcode: 45009 });
      await request(`${stack.proxyUrl}/cgi-bin/department/list`);
      const message = JSON.stringify({ touser: "zhangsan", msgtype: "text", agentid: 1000002, text: { content: "x" } });
      for (let i = 0; i < 31; i += 1) await request(`${stack.proxyUrl}/cgi-bin/message/send`, { body: message });
      await page.reload();
      const row = await contacts.innerText();
      expect(row).toContain("cached");
      expect(row).toMatch(/forced\s+\d+ s ago/);
      const fencedRow = await partner.innerText();
      expect(fencedRow).toContain("60020");
      expect(fencedRow).toContain(
        'WeCom saw this call come from 127.0.0.1, which is not among agent "partner"\'s trusted IPs',
      );
      expect(fencedRow).toContain("企业可信IP");
      expect(fencedRow).toMatch(/127\.0\.0\.1\s*$/); // the egress IP column
      expect(await page.locator("tr", { hasText: "/cgi-bin/department/list" }).innerText()).toMatch(/until \d{4}-/);
      expect(await page.locator("tr", { has: page.locator("td", { hasText: /^member$/ }) }).innerText()).toMatch(
        /notify\s+member\s+0\s+1/,
      );
      expect(await page.locator("h2").allInnerTexts()).toEqual([
        "Agents",
        "Holds (45009)",
        "Budgets",
        "Store",
        "Callbacks",
      ]);
      const screenshot = await page.screenshot({ fullPage: true });
      expect(screenshot.subarray(1, 4).toString("latin1")).toBe("PNG");
      const keep = process.env["WECOM_PROXY_STATUS_SCREENSHOT"];
      if (keep !== undefined && keep !== "") writeFileSync(keep, screenshot);
      // Only the page itself: no script, style sheet, font or image from anywhere.
      expect(
        requested.every((url) => url.startsWith(`${stack.proxyUrl}/-/status`) || url.endsWith("/favicon.ico")),
      ).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
      await stack.close();
    }
  });
});

function findChromium(): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "chromium");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}
