// The status page's HTML, from a plain view of the proxy's state: no scripts, no external
// assets, every value escaped. The view never holds a secret or a token.

export interface AgentView {
  readonly name: string;
  readonly corpid: string;
  readonly agentid: number | undefined;
  /** API families the agent declares, when the configuration has them. */
  readonly families: readonly string[] | undefined;
  readonly token: {
    readonly cached: boolean;
    readonly ageSeconds: number | undefined;
    readonly secondsLeft: number | undefined;
    readonly expiresAt: number | undefined;
    readonly lastRefresh: { readonly at: number; readonly reason: string } | undefined;
    readonly lastError:
      { readonly at: number; readonly errcode: number | undefined; readonly errmsg: string } | undefined;
  };
  /** The last problem WeCom reported for this agent and what to do about it, when known. */
  readonly problem: { readonly at: number; readonly errcode: number; readonly hint: string } | undefined;
  /** The IP WeCom saw this agent's calls come from ("from ip" in its answers), when known. */
  readonly egressIp: string | undefined;
}

export interface StatusView {
  readonly version: string;
  readonly now: number;
  readonly uptimeSeconds: number;
  readonly agents: readonly AgentView[];
  readonly holds: readonly { readonly agent: string; readonly path: string; readonly until: number }[];
  readonly budgets: {
    readonly ledger: string;
    readonly degraded: boolean;
    readonly maxWaitMs: number;
    readonly messagesPerMember: string;
    readonly perApi: string;
    readonly perIp: string;
    readonly maxConcurrentPerApi: string;
    readonly hold: string;
    readonly tally: readonly {
      readonly agent: string;
      readonly reason: string;
      readonly waits: number;
      readonly refusals: number;
    }[];
  };
  readonly store: { readonly description: string; readonly healthy: boolean; readonly problem: string | undefined };
  readonly callbacks:
    | readonly {
        readonly name: string;
        readonly path: string;
        readonly pending: number;
        readonly delivered: number;
        readonly deadLettered: number;
        readonly lastError: { readonly at: number; readonly error: string } | undefined;
      }[]
    | undefined;
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (char) => ESCAPES[char] ?? char);
}

/** Tagged template (not named html, which formatters reflow): every value is escaped unless it is Html. */
class Html {
  constructor(readonly text: string) {}
}

function markup(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0] ?? "";
  values.forEach((value, index) => {
    text += render(value) + (strings[index + 1] ?? "");
  });
  return new Html(text);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null) return "";
  return escapeHtml(value);
}

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1d2329;background:#fff}
h1{font-size:1.35rem;margin:0 0 .25rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
.meta{color:#5b6670;margin:0}table{border-collapse:collapse;width:100%;margin:.25rem 0}
th,td{text-align:left;vertical-align:top;padding:.35rem .6rem;border-bottom:1px solid #e3e7ea}
th{background:#f4f6f8;font-weight:600}td small{color:#5b6670;display:block}
.ok{color:#176c2e}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}code{font-size:.92em}
`;

export function statusPage(view: StatusView): string {
  const store = view.store.healthy
    ? markup`<span class="ok">answers</span>`
    : markup`<span class="bad">unavailable</span>: ${view.store.problem}`;
  const page = markup`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>wecom-proxy status</title><style>${new Html(STYLE)}</style></head>
<body>
<h1>wecom-proxy status</h1>
<p class="meta">version ${view.version} · up ${duration(view.uptimeSeconds)} · ${iso(view.now)}</p>
<h2>Agents</h2>
${agentsTable(view)}
<h2>Holds (45009)</h2>
${holdsTable(view)}
<h2>Budgets</h2>
${budgetsSection(view)}
<h2>Store</h2>
<p>${view.store.description} · ${store}</p>
<h2>Callbacks</h2>
${callbacksTable(view)}
</body></html>
`;
  return page.text;
}

function agentsTable(view: StatusView): Html {
  const rows = view.agents.map((agent) => {
    const { token } = agent;
    const left = `age ${maybe(token.ageSeconds, duration)} · ${maybe(token.secondsLeft, duration)} left`;
    const state = token.cached
      ? markup`<span class="ok">cached</span><small>${left} · expires ${maybe(token.expiresAt, iso)}</small>`
      : markup`<span class="warn">none cached</span>`;
    const refresh =
      token.lastRefresh === undefined
        ? markup`—`
        : markup`${token.lastRefresh.reason}<small>${ago(view.now, token.lastRefresh.at)}</small>`;
    const error =
      token.lastError === undefined
        ? markup``
        : markup`<small class="bad">gettoken failed ${ago(view.now, token.lastError.at)}: ${
            token.lastError.errcode ?? "no errcode"
          } ${token.lastError.errmsg}</small>`;
    const problem =
      agent.problem === undefined
        ? markup`—`
        : markup`<span class="bad">${agent.problem.errcode}</span> ${agent.problem.hint}<small>${ago(
            view.now,
            agent.problem.at,
          )}</small>`;
    const app = agent.agentid === undefined ? agent.corpid : `${agent.corpid} · agentid ${agent.agentid}`;
    const families = agent.families === undefined || agent.families.length === 0 ? "—" : agent.families.join(", ");
    return markup`<tr><td><strong>${agent.name}</strong><small>${app}</small></td><td>${families}</td>
<td>${state}${error}</td><td>${refresh}</td><td>${problem}</td><td>${agent.egressIp ?? "—"}</td></tr>
`;
  });
  return markup`<table><thead><tr><th>agent</th><th>families</th><th>token</th><th>last refresh</th><th>last WeCom problem</th><th>egress IP</th></tr></thead>
<tbody>
${rows}</tbody></table>`;
}

function holdsTable(view: StatusView): Html {
  if (view.holds.length === 0) return markup`<p class="ok">No API is held back.</p>`;
  const rows = view.holds.map((hold) => {
    const left = duration(Math.ceil((hold.until - view.now) / 1000));
    return markup`<tr><td>${hold.agent}</td><td><code>${hold.path}</code></td><td>until ${iso(hold.until)}<small>${left} left</small></td></tr>
`;
  });
  return markup`<table><thead><tr><th>agent</th><th>API</th><th>held back</th></tr></thead>
<tbody>
${rows}</tbody></table>`;
}

function budgetsSection(view: StatusView): Html {
  const b = view.budgets;
  const counted = b.degraded ? markup`<span class="bad">${b.ledger}</span>` : markup`${b.ledger}`;
  const rows = b.tally.map(
    (row) =>
      markup`<tr><td>${row.agent}</td><td>${row.reason}</td><td>${row.waits}</td><td>${row.refusals}</td></tr>
`,
  );
  const tally =
    b.tally.length === 0
      ? markup`<p class="ok">No request has waited or been refused since start.</p>`
      : markup`<table><thead><tr><th>agent</th><th>limit</th><th>waited</th><th>refused (429)</th></tr></thead>
<tbody>
${rows}</tbody></table>`;
  return markup`<table><tbody>
<tr><th>per member (message sends)</th><td>${b.messagesPerMember}</td></tr>
<tr><th>per API (corp and path)</th><td>${b.perApi}</td></tr>
<tr><th>per IP (egress and path)</th><td>${b.perIp}</td></tr>
<tr><th>concurrent calls per API</th><td>${b.maxConcurrentPerApi}</td></tr>
<tr><th>longest wait before 429</th><td>${b.maxWaitMs} ms</td></tr>
<tr><th>45009 hold</th><td>${b.hold}</td></tr>
<tr><th>counted in</th><td>${counted}</td></tr>
</tbody></table>
${tally}`;
}

function callbacksTable(view: StatusView): Html {
  if (view.callbacks === undefined) return markup`<p>No callbacks configured.</p>`;
  const rows = view.callbacks.map((app) => {
    const dead = app.deadLettered > 0 ? markup`<td class="bad">` : markup`<td>`;
    const error =
      app.lastError === undefined
        ? "—"
        : markup`${app.lastError.error}<small>${ago(view.now, app.lastError.at)}</small>`;
    return markup`<tr><td>${app.name}<small><code>${app.path}</code></small></td><td>${app.pending}</td><td>${app.delivered}</td>${dead}${app.deadLettered}</td><td>${error}</td></tr>
`;
  });
  return markup`<table><thead><tr><th>app</th><th>backlog</th><th>delivered</th><th>dead letters</th><th>last delivery error</th></tr></thead>
<tbody>
${rows}</tbody></table>`;
}

function maybe<T>(value: T | undefined, show: (value: T) => string): string {
  return value === undefined ? "—" : show(value);
}

function iso(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function ago(now: number, at: number): string {
  return `${duration(Math.max(0, Math.round((now - at) / 1000)))} ago (${iso(at)})`;
}

/** 75 → "1 min 15 s"; 7200 → "2 h 0 min". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}
