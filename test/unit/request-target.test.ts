// DESIGN §5: the query goes upstream as received, minus every incoming access_token.
import { describe, expect, test } from "vitest";
import { queryValue, splitTarget, withoutParam } from "../../src/http/request-target.js";

describe("splitTarget", () => {
  test("splits the path from the query at the first ?", () => {
    expect(splitTarget("/cgi-bin/user/get?userid=zhangsan")).toEqual({
      rawPath: "/cgi-bin/user/get",
      rawQuery: "userid=zhangsan",
    });
  });

  test("gives an empty query when there is no ?", () => {
    expect(splitTarget("/cgi-bin/user/get")).toEqual({ rawPath: "/cgi-bin/user/get", rawQuery: "" });
  });

  test("gives an empty query when the target ends with ?", () => {
    expect(splitTarget("/cgi-bin/user/get?")).toEqual({ rawPath: "/cgi-bin/user/get", rawQuery: "" });
  });

  test("keeps a later ? inside the query", () => {
    expect(splitTarget("/a?url=http://x/?y=1")).toEqual({ rawPath: "/a", rawQuery: "url=http://x/?y=1" });
  });

  test("decodes nothing in either part", () => {
    expect(splitTarget("/files/a%20b%2Fc?q=%2B+%20&x=%zz")).toEqual({
      rawPath: "/files/a%20b%2Fc",
      rawQuery: "q=%2B+%20&x=%zz",
    });
  });
});

describe("queryValue", () => {
  test("gives the decoded value of the named parameter", () => {
    expect(queryValue("userid=%E5%BC%A0%E4%B8%89&agentid=1000002", "userid")).toBe("张三");
  });

  test("reads + in a value as a space", () => {
    expect(queryValue("q=a+b%2Bc", "q")).toBe("a b+c");
  });

  test("gives the first value of a repeated parameter", () => {
    expect(queryValue("agentid=1&agentid=2", "agentid")).toBe("1");
  });

  test("matches a percent-encoded parameter name", () => {
    expect(queryValue("%61gentid=1000002", "agentid")).toBe("1000002");
  });

  test("gives an empty string for a parameter without =", () => {
    expect(queryValue("debug&agentid=5", "debug")).toBe("");
  });

  test("gives an empty string for a parameter with an empty value", () => {
    expect(queryValue("agentid=&x=1", "agentid")).toBe("");
  });

  test("gives undefined for an absent parameter", () => {
    expect(queryValue("xagentid=1&agentid2=2", "agentid")).toBeUndefined();
  });

  test("gives undefined for an empty query", () => {
    expect(queryValue("", "agentid")).toBeUndefined();
  });

  test("gives a value with a malformed escape as it came", () => {
    expect(queryValue("q=100%zz", "q")).toBe("100%zz");
  });
});

describe("withoutParam access_token", () => {
  const strip = (rawQuery: string) => withoutParam(rawQuery, "access_token");

  test("removes the access_token parameter", () => {
    expect(strip("userid=zhangsan&access_token=LEGACY")).toBe("userid=zhangsan");
  });

  test("removes every access_token when there are several", () => {
    expect(strip("access_token=A&a=1&access_token=B&b=2&access_token=C")).toBe("a=1&b=2");
  });

  test("removes an access_token whose name is percent-encoded", () => {
    expect(strip("a=1&%61ccess_token=X&b=2")).toBe("a=1&b=2");
    expect(strip("a=1&access%5Ftoken=X&b=2")).toBe("a=1&b=2");
    expect(strip("a=1&%61%63%63%65%73%73%5f%74%6f%6b%65%6e=X")).toBe("a=1");
  });

  test("removes an access_token with an empty value or no =", () => {
    expect(strip("a=1&access_token=&b=2&access_token")).toBe("a=1&b=2");
  });

  test("gives an empty query when access_token was the only parameter", () => {
    expect(strip("access_token=X")).toBe("");
  });

  test("keeps parameters whose names only resemble access_token", () => {
    expect(strip("xaccess_token=1&access_token2=2&suite_access_token=3&access+token=4")).toBe(
      "xaccess_token=1&access_token2=2&suite_access_token=3&access+token=4",
    );
  });

  test("keeps a parameter whose value mentions access_token", () => {
    expect(strip("next=access_token%3DX&access_token=Y")).toBe("next=access_token%3DX");
  });

  test("keeps the other parameters in their order, with their repeats", () => {
    expect(strip("b=2&a=1&access_token=X&b=3&a=0")).toBe("b=2&a=1&b=3&a=0");
  });

  test("keeps the raw bytes of the other parameters", () => {
    expect(strip("q=a%20b&plus=%2B&sp=a+b&access_token=X&zh=%E5%BC%A0&bad=%zz")).toBe(
      "q=a%20b&plus=%2B&sp=a+b&zh=%E5%BC%A0&bad=%zz",
    );
  });

  test("keeps a parameter with an empty value", () => {
    expect(strip("empty=&access_token=X&flag")).toBe("empty=&flag");
  });

  test("keeps an empty parameter between two ampersands", () => {
    expect(strip("a=1&&b=2&access_token=X")).toBe("a=1&&b=2");
  });

  test("keeps a value that holds slashes and a colon", () => {
    expect(strip("url=http://x//y&access_token=X")).toBe("url=http://x//y");
  });

  test("gives an empty query for an empty query", () => {
    expect(strip("")).toBe("");
  });
});
