/** A stand-in OTLP/HTTP JSON trace receiver: accepts POST /v1/traces, counts spans, answers 200 {}. */
import http from "node:http";

interface OtlpTraces {
  resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
}

export interface OtlpReceiver {
  port: number;
  spans(): number;
  requests(): number;
  close(): Promise<void>;
}

export function startOtlpReceiver(): Promise<OtlpReceiver> {
  let spans = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        requests++;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpTraces;
          for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
        } catch {
          // Not JSON (a protobuf body): counted as a request, its spans unknown.
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(404).end();
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        port,
        spans: () => spans,
        requests: () => requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
