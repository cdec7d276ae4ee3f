// Reads a V8 CPU profile (node --cpu-prof) and ranks functions by self and inclusive time,
// so where a request's time goes can be read, not guessed.
import { readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  /** µs on the monotonic clock (process.hrtime's). */
  readonly startTime: number;
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Ranked {
  readonly name: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

/** A span of the monotonic clock, µs: only the samples taken under load count. */
export interface Window {
  readonly fromMicros: number;
  readonly toMicros: number;
}

/** Functions by self time and by inclusive time (recursion counted once per sample). */
export function rankProfile(file: string, window?: Window): { byFunction: Ranked[]; sampledMs: number } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sampledMs = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window !== undefined && (at < window.fromMicros || at > window.toMicros)) return;
    const ms = delta / 1000;
    sampledMs += ms;
    const leaf = byId.get(id);
    if (leaf === undefined) return;
    const leafName = nameOf(leaf);
    self.set(leafName, (self.get(leafName) ?? 0) + ms);
    const seen = new Set<string>();
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
      const node = byId.get(up);
      if (node === undefined) break;
      const name = nameOf(node);
      if (seen.has(name)) continue;
      seen.add(name);
      total.set(name, (total.get(name) ?? 0) + ms);
    }
  });
  const byFunction = [...total].map(([name, totalMs]) => ({ name, selfMs: self.get(name) ?? 0, totalMs }));
  return { byFunction, sampledMs };
}

function nameOf(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const fn = functionName === "" ? "(anonymous)" : functionName;
  if (url === "") return fn;
  const where = url.includes("/node_modules/")
    ? url.slice(url.lastIndexOf("/node_modules/") + "/node_modules/".length)
    : url.startsWith("node:")
      ? url
      : path.relative(process.cwd(), new URL(url).pathname);
  return `${fn} ${where}:${lineNumber + 1}`;
}

/** The top `count` lines by self time, then by inclusive time. */
export function printTop(file: string, count: number, requests: number, window?: Window): void {
  const { byFunction, sampledMs } = rankProfile(file, window);
  const perRequest = (ms: number) => (requests > 0 ? `${((ms * 1000) / requests).toFixed(1).padStart(6)} µs/req` : "");
  const line = (r: Ranked, ms: number) =>
    `  ${((ms / sampledMs) * 100).toFixed(1).padStart(5)} %  ${perRequest(ms)}  ${r.name}`;
  const span = window === undefined ? "" : " while under load";
  console.log(`\nCPU profile: ${file}\n${sampledMs.toFixed(0)} ms sampled${span}, ${requests} requests served`);
  console.log(`top ${count} by self time:`);
  for (const r of [...byFunction].sort((a, b) => b.selfMs - a.selfMs).slice(0, count)) console.log(line(r, r.selfMs));
  console.log(`top ${count} by inclusive time (idle, program and GC excluded):`);
  const synthetic = new Set(["(root)", "(idle)", "(program)", "(garbage collector)"]);
  for (const r of [...byFunction]
    .filter((r) => !synthetic.has(r.name))
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, count))
    console.log(line(r, r.totalMs));
}
