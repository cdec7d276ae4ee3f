import { withoutHeaders, type Pass } from "../pass.js";

/**
 * Headers addressed to the proxy itself. Expect goes too: the body is already read, so
 * WeCom's "100 Continue" would mean nothing.
 */
const PROXY_CONTROLS = new Set(["x-wecom-agent", "expect"]);

export const stripProxyControls: Pass = (outgoing) => withoutHeaders(outgoing, (name) => PROXY_CONTROLS.has(name));
