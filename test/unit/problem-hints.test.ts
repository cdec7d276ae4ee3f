// The hints for WeCom's "wrong secret, agent or place" answers, as plain decisions.
import { describe, expect, test } from "vitest";
import { egressIpOf, hintFor, isProblemErrcode, type ProblemContext } from "../../src/wecom/problem-hints.js";

const base: ProblemContext = {
  errcode: 48002,
  path: "/cgi-bin/kf/account/list",
  agent: { name: "crm", agentid: undefined },
  family: "kf",
  familyAgent: "crm",
  egressIp: undefined,
};

describe("48002", () => {
  test("the declaring agent refused: check its secret or its 可调用接口的应用 setting", () => {
    expect(hintFor(base)).toMatch(
      /agent "crm" declares it but WeCom refused its secret: .*微信客服 → 可调用接口的应用/,
    );
  });

  test("a path of no known family: another feature's secret or a switch", () => {
    expect(hintFor({ ...base, path: "/cgi-bin/x/y", family: undefined, familyAgent: undefined })).toMatch(
      /^agent "crm"'s secret may not call \/cgi-bin\/x\/y: /,
    );
  });
});

test("301002 for an agent with no agentid says so", () => {
  expect(hintFor({ ...base, errcode: 301002 })).toContain("it has no agentid configured");
});

test("60020 without a from ip still says where to add it", () => {
  expect(hintFor({ ...base, errcode: 60020 })).toMatch(/an address its answer did not name.*企业可信IP/);
});

test("the egress IP is read from WeCom's errmsg, v4 or v6", () => {
  expect(egressIpOf("not allow to access from your ip, hint: [1-a], from ip: 1.2.3.4, more info at x")).toBe("1.2.3.4");
  expect(egressIpOf("api forbidden, hint: [1], from ip: 2001:db8::1, more info")).toBe("2001:db8::1");
  expect(egressIpOf("ok")).toBeUndefined();
});

test("only the four errcodes are problems", () => {
  expect([48002, 60011, 301002, 60020, 0, 40014, 60111].map(isProblemErrcode)).toEqual([
    true,
    true,
    true,
    true,
    false,
    false,
    false,
  ]);
});
