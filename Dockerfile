# llm-service image: Node 24 (slim), the compiled service, production dependencies only.
#   docker build -t llm-service .
#   docker run -p 8080:8080 -v llm-data:/data llm-service
# The development API key is printed to stderr on first start (docker logs <container>).

# --- build: install everything, compile TypeScript, drop dev dependencies --------------
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

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
# grpc.health.v1 over the Connect protocol (JSON over HTTP/1.1): exits 0 only when SERVING.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/grpc.health.v1.Health/Check', {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'}).then((r) => r.json()).then((b) => process.exit(b.status === 'SERVING' ? 0 : 1), () => process.exit(1))"]
# exec form: node is PID 1 and gets SIGTERM directly (graceful drain, SHUTDOWN_GRACE_MS).
CMD ["node", "dist/src/main.js"]
