// Properties of the functions that decide safety and correctness, each over thousands of
// generated inputs: path normalization, routing with authorization, the query rewrite, the
// header passes, and the config loader.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { authorize } from "../../src/access/authorize.js";
import type { Caller } from "../../src/access/caller.js";
import { loadConfigText } from "../../src/config/load.js";
import { ProxyError } from "../../src/errors.js";
import { pathWithToken } from "../../src/proxy/outgoing/inject-token.js";
import { frameForUpstream } from "../../src/proxy/outgoing/frame-for-upstream.js";
import { isHopByHop, stripHopByHop } from "../../src/proxy/outgoing/strip-hop-by-hop.js";
import { stripClientAddress } from "../../src/proxy/outgoing/strip-client-address.js";
import { stripProxyControls } from "../../src/proxy/outgoing/strip-proxy-controls.js";
import { runPasses, type Outgoing } from "../../src/proxy/pass.js";
import { normalizePath } from "../../src/routing/normalize-path.js";
import { locate } from "../../src/routing/locate.js";
import { splitTarget } from "../../src/http/request-target.js";
import { threeAgents } from "../helpers/routing.js";

const RUNS = { numRuns: 2000 };

/** Path segments an attacker would try, plus arbitrary text. */
const segment = fc.oneof(
  fc.constantFrom(
    "",
    ".",
    "..",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2f",
    "%2F",
    "%5c",
    "%00",
    "\\",
    "cgi-bin",
    "message",
    "send",
    "user",
    "get",
    "gettoken",
    "get_jsapi_ticket",
    "ticket",
    "webhook",
    "service",
    "apps",
    "hr",
    "notify",
    "-",
    ";x",
    "a;b",
    "%41",
    "%",
    "%zz",
    "%e4%bd%a0",
    "你好",
  ),
  fc.string({ maxLength: 6 }),
  fc.stringMatching(/^(%[0-9a-fA-F]{2}){1,3}$/),
);
const rawPath = fc.array(segment, { maxLength: 8 }).map((segments) => `/${segments.join("/")}`);

/** The result of f, or the ProxyError it threw; anything else thrown fails the property. */
function outcome<T>(f: () => T): T | ProxyError {
  try {
    return f();
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
}

describe("path normalization", () => {
  test("is idempotent and never yields .., //, NUL, a backslash or an encoded slash", () => {
    fc.assert(
      fc.property(rawPath, (raw) => {
        const path = outcome(() => normalizePath(raw));
        if (path instanceof ProxyError) {
          expect(path.status).toBe(400);
          return;
        }
        expect(normalizePath(path)).toBe(path);
        expect(path.startsWith("/")).toBe(true);
        expect(path.split("/")).not.toContain("..");
        expect(path.split("/").slice(1, -1)).not.toContain(".");
        expect(path).not.toContain("//");
        expect(path).not.toMatch(/\0|\\|%2f|%5c|%00/i);
        expect(decodeURIComponent(path)).not.toMatch(/(^|\/)\.\.?(\/|$)/);
      }),
      RUNS,
    );
  });
});

const { config, routing, agent: agentNamed } = threeAgents(["{ mount: /apps/notify, agent: notify }"]);

const caller = fc.record({
  agents: fc.subarray(["contacts", "notify", "hr"], { minLength: 1 }),
  paths: fc.option(fc.subarray(["/cgi-bin/message", "/cgi-bin/user/get", "/cgi-bin/webhook/", "/apps"]), {
    nil: undefined,
  }),
});
const agentid = fc.constantFrom("1000002", "1000003", "1000004", " 1000002", "x", "");
const query = fc
  .array(
    fc.oneof(
      agentid.map((id) => `agentid=${id}`),
      fc.constantFrom("access_token=wxp_x", "userid=zhangsan", "agentid", "a=%zz", "&"),
    ),
    { maxLength: 4 },
  )
  .map((params) => params.join("&"));
const body = fc.oneof(
  fc.constant(""),
  agentid.map((id) => `{"agentid":${/^\d+$/.test(id) ? id : JSON.stringify(id)},"touser":"@all"}`),
  fc.string({ maxLength: 20 }),
);

describe("routing with authorization", () => {
  test("a client never reaches an agent or a path outside its scope, and what is checked is what is forwarded", () => {
    fc.assert(
      fc.property(
        caller,
        rawPath,
        query,
        body,
        fc.option(fc.constantFrom("contacts", "notify", "hr", "nobody", " hr "), { nil: undefined }),
        fc.option(fc.constantFrom("contacts", "notify", "hr"), { nil: undefined }),
        (scope, raw, rawQuery, text, headerAgent, issued) => {
          const client: Caller = { name: "c", agents: scope.agents.map(agentNamed), paths: scope.paths };
          const result = outcome(() => {
            const located = locate(config, normalizePath(raw), headerAgent);
            const pick = routing.pick(located, {
              rawQuery,
              body: Buffer.from(text),
              issuedAgent: issued === undefined ? undefined : agentNamed(issued),
              allowed: client.agents,
            });
            authorize(client, pick);
            return pick;
          });
          if (result instanceof ProxyError) {
            expect([400, 403]).toContain(result.status);
            return;
          }
          if (result.agent !== undefined) expect(client.agents).toContain(result.agent);
          if (client.paths !== undefined) {
            expect(
              client.paths.some((prefix) =>
                prefix.endsWith("/")
                  ? result.path.startsWith(prefix)
                  : result.path === prefix || result.path.startsWith(`${prefix}/`),
              ),
            ).toBe(true);
          }
          const forwarded = splitTarget(pathWithToken(outgoingFor(result.path, rawQuery), "T")).rawPath;
          expect(forwarded).toBe(result.path);
        },
      ),
      RUNS,
    );
  });
});

function outgoingFor(path: string, rawQuery: string, headers: Outgoing["headers"] = {}): Outgoing {
  return { method: "GET", path, rawQuery, headers, body: Buffer.alloc(0), hasBody: false };
}

/** A query parameter's name as a server decodes it; the oracle the rewrite is checked against. */
function decodedName(param: string): string {
  const raw = param.split("=")[0] ?? "";
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}

const paramText = fc.stringMatching(/^[A-Za-z0-9%_.+~*=-]{0,8}$/);
const param = fc.oneof(
  fc.constantFrom("access_token=", "access%5Ftoken=x", "access_tok%65n=y", "ACCESS_TOKEN=z", "access_token"),
  fc.tuple(fc.constantFrom("access_token", "userid", "agentid", "type", "a"), paramText).map(([n, v]) => `${n}=${v}`),
  paramText,
);

describe("the query rewrite", () => {
  test("removes every access_token, adds one, and keeps every other parameter byte for byte, in order", () => {
    fc.assert(
      fc.property(fc.array(param, { maxLength: 8 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), (params, token) => {
        const rawQuery = params.join("&");
        const forwarded = splitTarget(pathWithToken(outgoingFor("/cgi-bin/user/get", rawQuery), token)).rawQuery;
        const sent = forwarded.split("&");
        const expectedKept =
          rawQuery === "" ? [] : rawQuery.split("&").filter((p: string) => decodedName(p) !== "access_token");
        expect(sent.slice(0, -1)).toEqual(expectedKept);
        expect(sent.at(-1)).toBe(`access_token=${token}`);
        expect(sent.filter((p) => decodedName(p) === "access_token")).toHaveLength(1);
      }),
      RUNS,
    );
  });
});

const CONTROLLED = ["x-wecom-agent", "authorization", "expect"];
const CLIENT_ADDRESS = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via"];
const headerName = fc.oneof(
  fc.constantFrom(
    ...CONTROLLED,
    ...CLIENT_ADDRESS,
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "content-type",
    "user-agent",
    "x-custom",
    "range",
  ),
  fc.stringMatching(/^x-forwarded-[a-z]{1,6}$/),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
);

describe("the header passes", () => {
  test("nothing hop-by-hop, nothing naming the client's address, no X-WeCom-Agent or Authorization reaches WeCom", () => {
    const passes = [stripHopByHop, stripClientAddress, stripProxyControls, frameForUpstream("qyapi.example")];
    fc.assert(
      fc.property(
        fc.dictionary(headerName, fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 2 })),
        fc.array(headerName, { maxLength: 3 }),
        (headers, connectionNames) => {
          const incoming = { ...headers, connection: [connectionNames.join(", ")] };
          const sent = runPasses(outgoingFor("/cgi-bin/user/get", "", incoming), passes).headers;
          const leaked = Object.keys(sent).filter(
            (name) =>
              isHopByHop(name) ||
              connectionNames.includes(name) ||
              CONTROLLED.includes(name) ||
              CLIENT_ADDRESS.includes(name) ||
              name.startsWith("x-forwarded-"),
          );
          const changed = Object.keys(sent).filter((name) => name !== "host" && sent[name] !== headers[name]);
          return leaked.length === 0 && changed.length === 0 && sent["host"] === "qyapi.example";
        },
      ),
      RUNS,
    );
  });
});

/** YAML-ish text: keys of the real schema, anchors, aliases, merges, tags, flow and block syntax. */
const yamlToken = fc.oneof(
  fc.constantFrom(
    "agents:",
    "listen:",
    "limits:",
    "clients:",
    "routes:",
    "callbacks:",
    "corpid: ww1",
    "secret: s",
    "secretFile: /dev/null",
    "keyFile: ./nope",
    "port: 99999",
    "maxBodyBytes: -1",
    "host: ${HOST}",
    "a: &a [1, 2]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
    "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
    "<<: *a",
    "*x",
    "!!binary aGk=",
    "!!js/function f",
    "- x",
    "[",
    "{",
    "}",
    "---",
    "...",
    "? complex",
    "'unterminated",
    '"\\u0000"',
    "%YAML 9.9",
    "\t",
    "#",
    ":",
  ),
  fc.string({ maxLength: 12 }),
);
const yamlText = fc
  .array(fc.tuple(fc.nat({ max: 6 }), yamlToken), { maxLength: 12 })
  .map((lines) => lines.map(([indent, token]) => `${" ".repeat(indent)}${token}`).join("\n"));
const deepNesting = fc.oneof(
  fc
    .tuple(fc.nat({ max: 5000 }), fc.constantFrom("[", "{a: ", "- ", "? ", "[\n"))
    .map(([depth, open]) => open.repeat(depth) + "x"),
  fc.nat({ max: 300 }).map((depth) => Array.from({ length: depth }, (_, i) => `${" ".repeat(i)}k:`).join("\n")),
);

describe("the config loader", () => {
  test("any text loads or yields problems, one line each, never a stack trace and never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(yamlText, fc.string({ maxLength: 60 }), deepNesting), (text) => {
        const result = loadConfigText(text, { env: { HOST: "127.0.0.1" }, baseDir: "/nonexistent" });
        if (result.ok) return true;
        return (
          result.problems.length > 0 &&
          result.problems.every((problem) => typeof problem === "string" && !/\n|\bat .+:\d+:\d+/.test(problem))
        );
      }),
      { numRuns: 1500 },
    );
  });
});
