// DESIGN §6a: who a request may act as, decided from what it presents; every 401 and 403.
import { describe, expect, test } from "vitest";
import { authorizeCaller, type Identity } from "../../src/access/authorize.js";
import { callerOf } from "../../src/access/caller.js";
import type { ClientConfig } from "../../src/config/load.js";
import { Forbidden, Unauthenticated } from "../../src/errors.js";
import { configOf } from "../helpers/config.js";

const config = configOf(`
corpid: wwcorp0001
agents:
  notify: { secret: s-notify }
  hr: { secret: s-hr }
clients:
  billing: { key: billing-key-0001, agents: [notify] }
  jobs: { cidrs: [10.0.0.0/8], agents: [hr] }
`);
const client = (name: string) => config.clients?.get(name) as ClientConfig;
const billing = client("billing");
const jobs = client("jobs");
const holder = { agent: billing.agents[0] as NonNullable<ClientConfig["agents"][0]>, caller: callerOf(billing) };

function identity(presented: Partial<Identity> = {}): Identity {
  return {
    kind: "identity",
    accessControl: true,
    holder: undefined,
    bearer: { kind: "none" },
    byAddress: undefined,
    ...presented,
  };
}

function refusal(presented: Partial<Identity>): Error {
  try {
    authorizeCaller(identity(presented));
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a refusal");
}

describe("authorizeCaller", () => {
  test("without access control, nobody is asked anything, not even about a malformed header", () => {
    expect(authorizeCaller(identity({ accessControl: false, bearer: { kind: "malformed" } }))).toBeUndefined();
  });

  test("a client key, a proxy-issued token and a source address each name the caller", () => {
    expect(authorizeCaller(identity({ bearer: { kind: "client", client: billing } }))?.name).toBe("billing");
    expect(authorizeCaller(identity({ holder }))?.name).toBe("billing");
    expect(authorizeCaller(identity({ byAddress: jobs }))).toEqual(callerOf(jobs));
  });

  test("a token sent with its own client's key is that client", () => {
    expect(authorizeCaller(identity({ holder, bearer: { kind: "client", client: billing } }))?.name).toBe("billing");
  });

  test.each<[string, Partial<Identity>, typeof Unauthenticated | typeof Forbidden, RegExp]>([
    ["nothing presented", {}, Unauthenticated, /serves its configured clients only/],
    ["a malformed header", { bearer: { kind: "malformed" } }, Unauthenticated, /malformed Authorization header/],
    ["a key of no client", { bearer: { kind: "unknown" } }, Unauthenticated, /belongs to no client/],
    ["a malformed header with a valid token", { holder, bearer: { kind: "malformed" } }, Unauthenticated, /malformed/],
    [
      "another client's key with a token",
      { holder, bearer: { kind: "client", client: jobs } },
      Forbidden,
      /issued to "billing", not to client "jobs"/,
    ],
  ])("%s is refused", (_, presented, kind, message) => {
    const error = refusal(presented);
    expect(error).toBeInstanceOf(kind);
    expect(error.message).toMatch(message);
  });
});
