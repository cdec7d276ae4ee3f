import { describe, expect, test } from "vitest";
import { isPacedSend, recipientsOf } from "../../src/wecom/limits.js";

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("recipientsOf: the keys a send spends WeCom's per-member limit on", () => {
  test("each member of a touser list, each party and tag, @all once", () => {
    expect(recipientsOf("/cgi-bin/message/send", body({ touser: "a| b |a|", toparty: "1|2", totag: 3 }))).toEqual([
      "user:a",
      "user:b",
      "party:1",
      "party:2",
      "tag:3",
    ]);
    expect(recipientsOf("/cgi-bin/message/send", body({ touser: "@all" }))).toEqual(["all"]);
  });

  test("linkedcorp's arrays and toall; app chats per chat", () => {
    expect(
      recipientsOf("/cgi-bin/linkedcorp/message/send", body({ touser: ["corp/u1", "corp/u2"], toall: 1 })),
    ).toEqual(["all", "user:corp/u1", "user:corp/u2"]);
    expect(recipientsOf("/cgi-bin/appchat/send", body({ chatid: "c1", touser: "x" }))).toEqual(["chat:c1"]);
  });

  test("nothing for other paths, update_template_card included, and for bodies it cannot read", () => {
    expect(isPacedSend("/cgi-bin/message/update_template_card")).toBe(false);
    expect(recipientsOf("/cgi-bin/message/update_template_card", body({ touser: "a" }))).toEqual([]);
    expect(recipientsOf("/cgi-bin/user/get", body({ touser: "a" }))).toEqual([]);
    expect(recipientsOf("/cgi-bin/message/send", Buffer.from("not json"))).toEqual([]);
    expect(recipientsOf("/cgi-bin/message/send", body([1, 2]))).toEqual([]);
    expect(recipientsOf("/cgi-bin/message/send", Buffer.alloc(0))).toEqual([]);
  });
});
