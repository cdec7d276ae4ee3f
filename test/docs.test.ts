// README.md and docs/: every relative link and anchor resolves, and tables stay readable.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const pages = [
  "README.md",
  ...readdirSync(path.join(root, "docs"))
    .filter((file) => file.endsWith(".md"))
    .map((file) => `docs/${file}`),
];
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

/** Text outside fenced code blocks (links and headings in code are not links and headings). */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, "");

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to "-", repeats numbered. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of prose(read(file)).matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = (heading ?? "")
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

describe.each(pages)("%s", (page) => {
  test("every relative link names a file that exists, and every anchor a heading it has", () => {
    const broken: string[] = [];
    for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (target === undefined || /^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [file = "", anchor] = target.split("#");
      const resolved = file === "" ? page : path.posix.join(path.posix.dirname(page), file);
      if (!existsSync(path.join(root, resolved))) broken.push(`${target}: no file ${resolved}`);
      else if (anchor !== undefined && resolved.endsWith(".md") && !anchorsOf(resolved).has(anchor)) {
        broken.push(`${target}: no heading #${anchor} in ${resolved}`);
      }
    }
    expect(broken).toEqual([]);
  });

  test("has no table row longer than 300 characters", () => {
    const long = read(page)
      .split("\n")
      .filter((line) => line.startsWith("|") && line.length > 300);
    expect(long).toEqual([]);
  });
});

test("docs/README.md links every page of docs/", () => {
  const index = read("docs/README.md");
  for (const page of pages.filter((file) => file.startsWith("docs/") && file !== "docs/README.md")) {
    expect(index).toContain(`](${path.basename(page)})`);
  }
});
