/**
 * Serves a built single-page app (the /playground, built by Vite into dist/web) under a URL prefix:
 * GET and HEAD only, files looked up under one directory and never outside it, content types from
 * a fixed table, ETag revalidation, and long-lived caching only for Vite's content-hashed assets.
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** Answers the request and returns true when it is for the prefix; returns false for anything else. */
export type StaticAssetsHandler = (req: Req, res: Res) => boolean;

export interface StaticAssetsOptions {
  /** URL prefix without a trailing slash, e.g. "/playground". */
  prefix: string;
  /** Directory of the built files (index.html at its top). */
  dir: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

/** Vite writes content-hashed file names under assets/: their bytes never change under that name. */
const IMMUTABLE = "public, max-age=31536000, immutable";
/** Everything else (index.html above all) is revalidated on each use, cheaply, by ETag. */
const REVALIDATE = "no-cache";

/**
 * The page only calls the API (same origin by default, or a server the user names), so scripts,
 * styles and images come from this origin alone and the page cannot be framed.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' http: https:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The playground's build directory: dist/web at the package root (the nearest directory up from
 * this module with a package.json), both when run from source (src/server) and compiled (dist/src/server).
 */
export function defaultPlaygroundDir(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "web");
    const parent = dirname(dir);
    if (parent === dir) return join(dirname(from), "web");
    dir = parent;
  }
}

/** The path under `dir` for a URL path below the prefix, or undefined when it is malformed or leaves `dir`. */
function fileFor(root: string, relative: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return undefined;
  }
  // No NUL, no backslashes (another separator on Windows), no dot segments at all, no hidden files.
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
  const segments = decoded.split("/").filter((s) => s !== "");
  if (segments.some((s) => s.startsWith("."))) return undefined;
  const file = resolve(root, ...segments);
  return file.startsWith(root + sep) ? file : undefined;
}

function send(res: Res, status: number, headers: Record<string, string>, body?: string | Buffer, head = false): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (body !== undefined) res.setHeader("content-length", Buffer.byteLength(body));
  if (body === undefined || head) res.end();
  else res.end(body);
}

function text(res: Res, status: number, message: string, head: boolean, extra: Record<string, string> = {}): void {
  send(res, status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...extra }, message + "\n", head);
}

export function staticAssets(options: StaticAssetsOptions): StaticAssetsHandler {
  const prefix = options.prefix.replace(/\/+$/, "");
  const root = resolve(options.dir);

  async function serve(req: Req, res: Res, pathname: string, search: string): Promise<void> {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      text(res, 405, "method not allowed", false, { allow: "GET, HEAD" });
      return;
    }
    // "/playground" → "/playground/", so that the page's relative URLs resolve below the prefix.
    if (pathname === prefix) {
      send(res, 308, { location: `${prefix}/${search}`, "cache-control": "no-store" });
      return;
    }
    const relative = pathname.slice(prefix.length + 1) || "index.html";
    const file = fileFor(root, relative);
    if (file === undefined) {
      text(res, 404, "not found", head);
      return;
    }
    let info;
    try {
      info = await stat(file);
    } catch {
      info = undefined;
    }
    if (!info?.isFile()) {
      const built = existsSync(join(root, "index.html"));
      text(res, 404, built ? "not found" : "the playground is not built: run `npm run build` (or `npm run build:web`)", head);
      return;
    }
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const isHtml = extname(file) === ".html";
    const headers: Record<string, string> = {
      "content-type": CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
      "cache-control": relative.startsWith("assets/") ? IMMUTABLE : REVALIDATE,
      etag,
      "x-content-type-options": "nosniff",
      ...(isHtml ? { "content-security-policy": CSP, "referrer-policy": "no-referrer", "x-frame-options": "DENY" } : {}),
    };
    if (req.headers["if-none-match"] === etag) {
      send(res, 304, headers);
      return;
    }
    send(res, 200, headers, await readFile(file), head);
  }

  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname !== prefix && !pathname.startsWith(prefix + "/")) return false;
    serve(req, res, pathname, q < 0 ? "" : url.slice(q)).catch(() => {
      if (!res.headersSent) text(res, 500, "internal error", false);
      else res.end();
    });
    return true;
  };
}
