import { withoutHeaders, type Pass } from "../pass.js";

const CLIENT_ADDRESS = new Set(["forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip", "via"]);

/** WeCom never learns who is behind the proxy (DESIGN §5). */
export const stripClientAddress: Pass = (outgoing) =>
  withoutHeaders(outgoing, (name) => CLIENT_ADDRESS.has(name) || name.startsWith("x-forwarded-"));
