// The layout's import rules (`npm run lint`). A request flows down this list; a module may
// import from its own layer and the layers below it, never from one above.
/** @type {Array<{ name: string; paths: string[]; siblings?: boolean }>} */
const LAYERS = [
  { name: "cli", paths: ["cli/"] },
  { name: "server", paths: ["server/"] },
  // Two pipelines that share nothing but what lies below them.
  { name: "proxy-callbacks", paths: ["proxy/", "callbacks/"], siblings: false },
  { name: "tickets", paths: ["tickets/"] },
  { name: "access", paths: ["access/"] },
  { name: "routing", paths: ["routing/"] },
  // Observes the steps above it (implements their observer interfaces).
  { name: "metrics", paths: ["metrics\\.ts$"] },
  { name: "tokens", paths: ["tokens/"] },
  { name: "store", paths: ["store/"] },
  // Leaves: protocol knowledge, HTTP helpers, configuration, errors, the logger.
  { name: "base", paths: ["wecom/", "http/", "config/", "errors\\.ts$", "log\\.ts$"] },
];

/** The places the process is composed: they may import anything. */
const COMPOSITION_ROOTS = ["^src/cli/main\\.ts$", "^src/sandbox/run\\.ts$"];

const under = (paths) => `^src/(${paths.join("|")})`;

const layerRules = LAYERS.flatMap((layer, index) => {
  const above = LAYERS.slice(0, index).flatMap((l) => l.paths);
  const rules = [];
  if (above.length > 0) {
    rules.push({
      name: `layer-${layer.name}`,
      comment: `${layer.name} may not import a layer above it`,
      severity: "error",
      from: { path: under(layer.paths) },
      to: { path: under(above) },
    });
  }
  if (layer.siblings === false) {
    for (const path of layer.paths) {
      rules.push({
        name: `layer-${layer.name}-apart`,
        comment: `${path} may not import the other modules of its layer`,
        severity: "error",
        from: { path: under([path]) },
        to: { path: under(layer.paths.filter((p) => p !== path)) },
      });
    }
  }
  return rules;
});

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "server-and-cli-only-from-the-root",
      comment: "server/ and cli/ are imported by the composition roots only",
      severity: "error",
      from: { path: "^src/", pathNot: [...COMPOSITION_ROOTS, "^src/(server|cli)/"] },
      to: { path: "^src/(server|cli)/" },
    },
    {
      name: "sandbox-is-a-separate-tool",
      comment: "the fake WeCom uses protocol knowledge and leaves only, not the proxy",
      severity: "error",
      from: { path: "^src/sandbox/", pathNot: COMPOSITION_ROOTS },
      to: {
        path: "^src/",
        pathNot: ["^src/sandbox/", under(["wecom/", "http/", "config/", "errors\\.ts$", "log\\.ts$"])],
      },
    },
    {
      name: "nothing-uses-the-sandbox",
      comment: "the proxy never depends on its fake WeCom",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/sandbox/" },
      to: { path: "^src/sandbox/" },
    },
    {
      name: "src-not-from-tests-or-benchmarks",
      severity: "error",
      from: { path: "^src/" },
      to: { path: "^(test|bench)/" },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules)/" },
    // Type-only imports count: they couple modules as much as value imports do.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
