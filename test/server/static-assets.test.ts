/**
 * The /playground file server over real sockets (HTTP/1.1 and h2c): content types, caching, ETag
 * revalidation, the redirect to the trailing slash, methods, and no way out of its directory.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultPlaygroundDir, staticAssets } from "../../src/server/static-assets.js";

let base: string;
let root: string;
let site: string;
let server: http.Server;
let h2: http2.Http2Server;
let h2Url: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "static-assets-"));
  site = join(root, "site");
  mkdirSync(join(site, "assets"), { recursive: true });
  writeFileSync(join(site, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(site, "assets", "index-abc123.js"), "console.log(1)");
  writeFileSync(join(site, "assets", "index-abc123.css"), "body{}");
  writeFileSync(join(site, "logo.svg"), "<svg/>");
  writeFileSync(join(site, "data.bin"), "xx");
  writeFileSync(join(site, ".env"), "SECRET=1");
  // Beside the site directory, with a name that shares its prefix: never reachable.
  writeFileSync(join(root, "secret.txt"), "top secret");
  mkdirSync(join(root, "site-other"));
  writeFileSync(join(root, "site-other", "x.txt"), "other");

  const assets = staticAssets({ prefix: "/playground", dir: site });
  const handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
    if (!assets(req, res)) {
      res.statusCode = 418;
      res.end("not mine");
    }
  };
  server = http.createServer(handler);
  h2 = http2.createServer(handler);
  await Promise.all([
    new Promise<void>((r) => server.listen(0, "127.0.0.1", r)),
    new Promise<void>((r) => h2.listen(0, "127.0.0.1", r)),
  ]);
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  h2Url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => h2.close(r))]);
  rmSync(root, { recursive: true, force: true });
});

/** A raw HTTP/1.1 request, so that paths reach the server exactly as written (no URL normalisation). */
function raw(path: string, method = "GET", headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/`, { method, path, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("staticAssets", () => {
  it("serves index.html at the prefix's root, revalidated, with a CSP", async () => {
    const res = await raw("/playground/");
    expect(res.status).toBe(200);
    expect(res.body).toBe("<!doctype html><title>t</title>");
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["etag"]).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
  });

  it("redirects the bare prefix to the trailing slash, keeping the query", async () => {
    const res = await raw("/playground?server=http%3A%2F%2Fx");
    expect(res.status).toBe(308);
    expect(res.headers["location"]).toBe("/playground/?server=http%3A%2F%2Fx");
  });

  it("serves hashed assets with their content type, cached for a year", async () => {
    const js = await raw("/playground/assets/index-abc123.js");
    expect(js.status).toBe(200);
    expect(js.body).toBe("console.log(1)");
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(js.headers["content-security-policy"]).toBeUndefined();
    const css = await raw("/playground/assets/index-abc123.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect((await raw("/playground/logo.svg")).headers["content-type"]).toBe("image/svg+xml");
    const bin = await raw("/playground/data.bin");
    expect(bin.headers["content-type"]).toBe("application/octet-stream");
    expect(bin.headers["cache-control"]).toBe("no-cache");
  });

  it("answers If-None-Match with 304 and HEAD without a body", async () => {
    const first = await raw("/playground/assets/index-abc123.js");
    const again = await raw("/playground/assets/index-abc123.js", "GET", { "if-none-match": String(first.headers["etag"]) });
    expect(again.status).toBe(304);
    expect(again.body).toBe("");
    const head = await raw("/playground/assets/index-abc123.js", "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-length"]).toBe(String("console.log(1)".length));
    expect(head.body).toBe("");
  });

  it.each([
    "/playground/../secret.txt",
    "/playground/%2e%2e/secret.txt",
    "/playground/%2E%2E%2Fsecret.txt",
    "/playground/assets/../../secret.txt",
    "/playground/..%5csecret.txt",
    "/playground/../site-other/x.txt",
    "/playground/.env",
    "/playground/%00index.html",
    "/playground/%E0%A4%A",
    "/playground//etc/passwd",
    "/playground/nothing-here.js",
    "/playground/assets",
  ])("never serves anything outside its directory, hidden or missing: %s", async (path) => {
    const res = await raw(path);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain("secret");
    expect(res.body).not.toContain("other");
  });

  it("refuses other methods and leaves other paths to the next handler", async () => {
    const post = await raw("/playground/", "POST");
    expect(post.status).toBe(405);
    expect(post.headers["allow"]).toBe("GET, HEAD");
    expect((await raw("/llm.v1.LlmService/ListModels", "POST")).status).toBe(418);
    expect((await raw("/playgroundx")).status).toBe(418);
    expect((await raw("/")).status).toBe(418);
  });

  it("works over HTTP/2 (h2c) as well", async () => {
    const session = http2.connect(h2Url);
    try {
      const { status, type, body } = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = session.request({ ":path": "/playground/assets/index-abc123.js" });
        let status = 0;
        let type = "";
        let body = "";
        req.on("response", (h) => {
          status = Number(h[":status"]);
          type = String(h["content-type"]);
        });
        req.setEncoding("utf8");
        req.on("data", (c: string) => (body += c));
        req.on("end", () => resolve({ status, type, body }));
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(type).toBe("text/javascript; charset=utf-8");
      expect(body).toBe("console.log(1)");
    } finally {
      session.close();
    }
  });

  it("says how to build the page when it is not built", async () => {
    const missing = staticAssets({ prefix: "/playground", dir: join(root, "not-built") });
    const s = http.createServer((req, res) => void missing(req, res));
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    try {
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/playground/`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain("npm run build");
    } finally {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it("finds dist/web at the package root from source and from compiled code", () => {
    const pkg = join(new URL("../../", import.meta.url).pathname);
    expect(defaultPlaygroundDir(join(pkg, "src/server/static-assets.ts"))).toBe(join(pkg, "dist/web"));
    expect(defaultPlaygroundDir(join(pkg, "dist/src/server/static-assets.js"))).toBe(join(pkg, "dist/web"));
  });
});
