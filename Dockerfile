# syntax=docker/dockerfile:1
# Build: the same `npm ci` as the README and CI (it builds TypeScript and SQLite's native module).
FROM node:22-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm ci && npm prune --omit=dev

# Run: Node 22 LTS, no compiler, no dev dependencies, no benchmarks, not root.
FROM node:22-bookworm-slim
# Inside the container the proxy listens on every interface: the configuration it ships
# (config/container.yaml) names its clients and an admin key, without which it refuses to start.
ENV NODE_ENV=production \
    WECOM_PROXY_CONFIG=/etc/wecom-proxy/wecom-proxy.yaml \
    WECOM_PROXY_HOST=0.0.0.0 \
    WECOM_PROXY_PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY config/container.yaml /etc/wecom-proxy/wecom-proxy.yaml
COPY deploy/healthcheck.sh /app/healthcheck.sh
# The SQLite store (sqlite://./data/tokens.sqlite) lives on the volume.
RUN mkdir -p /var/lib/wecom-proxy && chown node:node /var/lib/wecom-proxy
VOLUME /var/lib/wecom-proxy
WORKDIR /var/lib/wecom-proxy
USER node
EXPOSE 8080
# bash and /dev/tcp on $WECOM_PROXY_PORT: follows the port, starts no Node process.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s CMD ["bash", "/app/healthcheck.sh"]
STOPSIGNAL SIGTERM
CMD ["node", "/app/dist/src/cli/main.js"]
