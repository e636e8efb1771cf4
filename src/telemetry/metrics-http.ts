/** GET /metrics: on the main port's HTTP handler (before the Connect adapter), or on a port of its own. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { GatewayMetrics } from "./metrics.js";

/** What both node:http and node:http2 requests and responses offer, as far as /metrics needs. */
interface MinimalRequest {
  readonly url?: string;
  readonly method?: string;
}
interface MinimalResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

export const METRICS_PATH = "/metrics";

/** Whether a request is for the metrics endpoint (any method: others get 405). */
export function isMetricsRequest(req: MinimalRequest): boolean {
  const url = req.url ?? "";
  return url === METRICS_PATH || url.startsWith(`${METRICS_PATH}?`);
}

/** Answers a /metrics request with the Prometheus text format. */
export function serveMetrics(metrics: GatewayMetrics, req: MinimalRequest, res: MinimalResponse): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
    res.end("method not allowed\n");
    return;
  }
  metrics.scrape().then(
    ({ contentType, body }) => {
      res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? "" : body);
    },
    () => {
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("metrics collection failed\n");
    },
  );
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** A plain HTTP/1.1 server for METRICS_PORT: /metrics and nothing else. */
export async function startMetricsServer(host: string, port: number, metrics: GatewayMetrics): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (isMetricsRequest(req)) return serveMetrics(metrics, req, res);
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
