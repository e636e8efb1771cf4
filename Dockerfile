# llm-service image: Node 24 (slim), the compiled service, production dependencies only.
#   docker build -t llm-service .
#   docker run -p 8080:8080 -v llm-data:/data llm-service
# The development API key is printed to stderr on first start (docker logs <container>).

# --- build: install everything, compile TypeScript, build the /playground page, drop dev dependencies
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
# The playground (Vite) and the TypeScript SDK source it is built with; the page lands in dist/web.
COPY web ./web
COPY sdk/ts/src ./sdk/ts/src
RUN npm run build:server && npm run build:web && npm prune --omit=dev --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------
FROM node:24-slim
WORKDIR /app
# Listen on every interface inside the container; the ledger and keys go to the /data
# volume unless DATABASE_URL points at Postgres.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
# The image's non-root user (uid 1000).
USER node
EXPOSE 8080
# The gRPC health protocol (grpc.health.v1.Health/Check over h2c, or TLS when TLS_CERT_FILE is set) on
# this container's own PORT: exits 0 only when SERVING, so a draining replica turns unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "dist/src/cli/healthcheck.js"]
# exec form: node is PID 1 and gets SIGTERM directly (graceful drain, SHUTDOWN_GRACE_MS).
# --max-semi-space-size=16 caps V8's young generation at 2 × 16 MiB, as `npm start` does: on a host
# with much memory V8 lets it grow to 2 × 64 MiB under load (bench/README.md, "Memory under load").
CMD ["node", "--max-semi-space-size=16", "dist/src/main.js"]
