import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { isoTimeField } from "../../src/log.js";

describe("the log's time field", () => {
  test("is toISOString's, to the millisecond, across second, day and year boundaries", () => {
    const times = [0, 999, 1000, 1_001, 1_790_000_000_000, 1_798_761_599_999, 1_798_761_600_000];
    for (const now of times) expect(isoTimeField(now)).toBe(`,"time":"${new Date(now).toISOString()}"`);
  });

  test("is toISOString's for any millisecond, in any order", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (now) => {
        expect(isoTimeField(now)).toBe(`,"time":"${new Date(now).toISOString()}"`);
      }),
    );
  });
});
