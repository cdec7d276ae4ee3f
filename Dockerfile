# syntax=docker/dockerfile:1
# Build: the same `npm ci` as the README and CI (it builds TypeScript and SQLite's native module).
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm ci && npm prune --omit=dev

# Run: no compiler, no dev dependencies, not root.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    WECOM_PROXY_CONFIG=/etc/wecom-proxy/wecom-proxy.yaml
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config/wecom-proxy.yaml /etc/wecom-proxy/wecom-proxy.yaml
# The SQLite store (sqlite://./data/tokens.sqlite) lives on the volume.
RUN mkdir -p /var/lib/wecom-proxy && chown node:node /var/lib/wecom-proxy
VOLUME /var/lib/wecom-proxy
WORKDIR /var/lib/wecom-proxy
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/-/healthy').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "/app/dist/src/cli/main.js", "--host", "0.0.0.0"]
