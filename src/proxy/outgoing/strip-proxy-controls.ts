import { withoutHeaders, type Pass } from "../pass.js";

/**
 * Headers addressed to the proxy itself. Expect goes too: the body is already read, so
 * WeCom's "100 Continue" would mean nothing. Authorization carries a client's key: WeCom
 * takes none, and a key must never leave the proxy.
 */
const PROXY_CONTROLS = new Set(["x-wecom-agent", "expect", "authorization"]);

export const stripProxyControls: Pass = (outgoing) => withoutHeaders(outgoing, (name) => PROXY_CONTROLS.has(name));
