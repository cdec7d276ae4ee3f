// DESIGN §8: routes are matched against the normalized path, and that same path is forwarded.
import { describe, expect, test } from "vitest";
import { BadRequest } from "../../src/errors.js";
import { normalizePath } from "../../src/routing/normalize-path.js";

/** The BadRequest that normalizePath throws for `rawPath`; fails the test if it returns or throws anything else. */
function rejectionOf(rawPath: string): BadRequest {
  let result: string;
  try {
    result = normalizePath(rawPath);
  } catch (error) {
    if (error instanceof BadRequest) return error;
    throw error;
  }
  throw new Error(`normalizePath(${JSON.stringify(rawPath)}) returned ${JSON.stringify(result)} instead of throwing`);
}

describe("paths that are already normal", () => {
  test.each([
    "/",
    "/cgi-bin/user/get",
    "/cgi-bin/user/",
    "/cgi-bin/media/get.jpg",
    "/a/b;c=d/e",
    "/a/...",
    "/a/~user/it's(1)*+,$&=:@!",
  ])("returns %s unchanged", (rawPath) => {
    expect(normalizePath(rawPath)).toBe(rawPath);
  });
});

describe("decoding", () => {
  test("decodes percent-escapes of unreserved characters", () => {
    expect(normalizePath("/cgi-bin/%75ser/%67et")).toBe("/cgi-bin/user/get");
  });

  test("decodes only once, so a double-encoded escape stays an escape", () => {
    expect(normalizePath("/cgi-bin/%2575ser/get")).toBe("/cgi-bin/%2575ser/get");
  });

  test("keeps a double-encoded slash as data instead of turning it into a separator", () => {
    expect(normalizePath("/cgi-bin/user%252Fget")).toBe("/cgi-bin/user%252Fget");
  });

  test("re-encodes a space as %20", () => {
    expect(normalizePath("/files/a%20b")).toBe("/files/a%20b");
  });

  test("re-encodes non-ASCII characters as upper-case UTF-8 escapes", () => {
    expect(normalizePath("/files/文件")).toBe("/files/%E6%96%87%E4%BB%B6");
    expect(normalizePath("/files/%e6%96%87%e4%bb%b6")).toBe("/files/%E6%96%87%E4%BB%B6");
  });

  test("leaves the characters RFC 3986 allows in a path segment unescaped when re-encoding", () => {
    expect(normalizePath("/x%20/%24%26%2B%2C%3B%3D%3A%40!*'()~-._")).toBe("/x%20/$&+,;=:@!*'()~-._");
  });
});

describe("dot segments and empty segments", () => {
  test("drops . segments", () => {
    expect(normalizePath("/cgi-bin/./user/./get")).toBe("/cgi-bin/user/get");
  });

  test("resolves .. against the segment before it", () => {
    expect(normalizePath("/cgi-bin/user/../department/list")).toBe("/cgi-bin/department/list");
  });

  test("resolves percent-encoded dot segments like plain ones", () => {
    expect(normalizePath("/cgi-bin/user/%2e%2E/department/%2E/list")).toBe("/cgi-bin/department/list");
  });

  test("collapses repeated slashes", () => {
    expect(normalizePath("//cgi-bin//user///get")).toBe("/cgi-bin/user/get");
  });

  test("keeps a trailing slash", () => {
    expect(normalizePath("/cgi-bin//user//")).toBe("/cgi-bin/user/");
  });

  test("ends with a slash when the last segment is . or ..", () => {
    expect(normalizePath("/cgi-bin/user/.")).toBe("/cgi-bin/user/");
    expect(normalizePath("/cgi-bin/user/get/..")).toBe("/cgi-bin/user/");
  });

  test("resolves a path made only of dots and slashes to /", () => {
    expect(normalizePath("/./")).toBe("/");
    expect(normalizePath("/a/..")).toBe("/");
    expect(normalizePath("//")).toBe("/");
  });
});

describe("malformed paths are a 400", () => {
  test.each(["/cgi-bin/user%2Fget", "/cgi-bin/user%2fget", "/apps/notify%2F..%2F..%2Fcgi-bin"])(
    "rejects the encoded slash in %s",
    (rawPath) => {
      expect(rejectionOf(rawPath).status).toBe(400);
    },
  );

  test.each(["/cgi-bin/user%5Cget", "/cgi-bin/user%5cget"])("rejects the encoded backslash in %s", (rawPath) => {
    expect(rejectionOf(rawPath).status).toBe(400);
  });

  test.each(["/cgi-bin/user\\get", "/cgi-bin\\..\\-\\tokens"])("rejects the backslash in %s", (rawPath) => {
    expect(rejectionOf(rawPath).status).toBe(400);
  });

  test("rejects an encoded NUL", () => {
    expect(rejectionOf("/cgi-bin/user%00/get").status).toBe(400);
  });

  test.each(["/..", "/../cgi-bin/user/get", "/cgi-bin/../../x", "/%2e%2e/x", "/cgi-bin/%2E%2E/%2E%2E/x"])(
    "rejects %s, which climbs above the root",
    (rawPath) => {
      expect(rejectionOf(rawPath).status).toBe(400);
    },
  );

  test.each(["/a/%zz", "/a/%", "/a/%4", "/a/%E6%96", "/a/%C0%AF", "/a/%FF"])(
    "rejects the malformed escape in %s",
    (rawPath) => {
      expect(rejectionOf(rawPath).status).toBe(400);
    },
  );

  test.each(["cgi-bin/user/get", "*", "http://evil.example/cgi-bin/user/get"])(
    "rejects %s, which does not start with /",
    (rawPath) => {
      expect(rejectionOf(rawPath).status).toBe(400);
    },
  );

  test("says in its WeCom-shaped answer that the path is malformed", () => {
    expect(rejectionOf("/a%2Fb").toJSON().errmsg).toMatch(/^wecom-proxy: malformed path/);
  });
});
