/**
 * A stand-in OTLP/HTTP JSON trace receiver: accepts POST /v1/traces, counts spans, answers 200 {}.
 * It runs in a worker thread: parsing an export (thousands of spans, megabytes of JSON) on the
 * bench process's own event loop stalled the load client that shares that loop, which made the
 * everything-on gateways look slower than they are.
 */
import http from "node:http";
import { isMainThread, parentPort, Worker } from "node:worker_threads";

interface OtlpTraces {
  resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
}

interface Counts {
  spans: number;
  requests: number;
}

export interface OtlpReceiver {
  port: number;
  spans(): number;
  requests(): number;
  close(): Promise<void>;
}

/** The worker's side: serves on a free loopback port, posts the port, then the counts after each export. */
function serve(): void {
  const counts: Counts = { spans: 0, requests: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        counts.requests++;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpTraces;
          for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) counts.spans += ss.spans?.length ?? 0;
        } catch {
          // Not JSON (a protobuf body): counted as a request, its spans unknown.
        }
        parentPort?.postMessage({ counts });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } else {
        res.writeHead(404).end();
      }
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    parentPort?.postMessage({ port: typeof addr === "object" && addr ? addr.port : 0 });
  });
}

if (!isMainThread && parentPort) serve();

export function startOtlpReceiver(): Promise<OtlpReceiver> {
  const worker = new Worker(new URL(import.meta.url));
  let counts: Counts = { spans: 0, requests: 0 };
  return new Promise((resolve, reject) => {
    worker.once("error", reject);
    worker.on("message", (m: { port?: number; counts?: Counts }) => {
      if (m.counts) counts = { ...m.counts };
      if (m.port !== undefined) {
        resolve({
          port: m.port,
          spans: () => counts.spans,
          requests: () => counts.requests,
          close: async () => {
            await worker.terminate();
          },
        });
      }
    });
  });
}
