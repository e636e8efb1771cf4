/**
 * The /playground page in Debian's Chromium, headless, driven by playwright-core: it loads from the
 * service, lists models, streams a reply over Connect and over gRPC-web, cancels one mid-stream
 * (the ledger row says cancelled), draws the usage chart, and calls the service from a second
 * origin listed in CORS_ORIGINS (works) and from a third that is not (fails). A screenshot goes to
 * test-results/playground.png.
 *
 * Needs /usr/bin/chromium (`bash scripts/chromium.sh`): skipped with a note without it, failed under CI=true.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultPlaygroundDir, staticAssets } from "../../src/server/static-assets.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
/** The flags that work on these machines: no sandbox as root, and no background traffic to a closed network. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCREENSHOT = `${ROOT}test-results/playground.png`;
const BROWSER_TEST_MS = 45_000;

/** A loopback HTTP server that serves the built playground, standing for a second web origin. */
async function originServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const assets = staticAssets({ prefix: "/playground", dir: defaultPlaygroundDir() });
  const server = http.createServer((req, res) => {
    if (!assets(req, res)) {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `npm run build:web`'s build step, so the test serves what it just built from web/. */
async function buildPlayground(): Promise<void> {
  await promisify(execFile)(process.execPath, [`${ROOT}node_modules/vite/bin/vite.js`, "build", "web", "--logLevel", "warn"], {
    cwd: ROOT,
    timeout: 120_000,
  });
}

function describeWithChromium(name: string, body: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, body);
  } else if (process.env["CI"] === "true") {
    describe(name, () => {
      it("has Chromium to run in", () => {
        throw new Error(`${CHROMIUM} is missing and CI=true: the browser test must run in CI. Install it with \`bash scripts/chromium.sh\`.`);
      });
    });
  } else {
    console.warn(`${name}: skipped, ${CHROMIUM} is missing (install it with \`bash scripts/chromium.sh\`)`);
    describe.skip(`${name} [skipped: ${CHROMIUM} is missing; bash scripts/chromium.sh installs it]`, body);
  }
}

describeWithChromium("playground in headless Chromium", () => {
  let server: TestServer;
  let allowed: Awaited<ReturnType<typeof originServer>>;
  let other: Awaited<ReturnType<typeof originServer>>;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await buildPlayground();
    [allowed, other] = await Promise.all([originServer(), originServer()]);
    const started = await Promise.all([
      // sim/lorem streams slowly enough (16 to 63 tokens, 50 ms apart) to be cancelled mid-stream.
      startTestServer({ CORS_ORIGINS: allowed.origin, SIM_INTER_TOKEN_MS: "50" }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
    ]);
    [server, browser] = started;
    page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([server?.close(), allowed?.close(), other?.close()]);
  });

  /** Pastes the key, presses "Load models" and waits until the page says it is connected (or not). */
  async function connect(p: Page, key: string, expected: "ok" | "error" = "ok"): Promise<void> {
    await p.fill("#api-key", key);
    await p.click("#connect");
    await p.waitForSelector(`#connection[data-state="${expected}"]`, { timeout: 10_000 });
  }

  async function sendPrompt(p: Page, model: string, prompt: string): Promise<void> {
    await p.selectOption("#model", model);
    await p.fill("#prompt", prompt);
    await p.click("#send");
  }

  it(
    "loads from the service, lists models and streams a reply over Connect",
    async () => {
      const res = await page.goto(`${server.baseUrl}/playground`);
      expect(res?.status()).toBe(200);
      expect(page.url()).toBe(`${server.baseUrl}/playground/`);
      expect(await page.title()).toBe("llm-service playground");

      await connect(page, server.key);
      const models = await page.$$eval("#model option", (options) => options.map((o) => (o as unknown as { value: string }).value));
      expect(models).toEqual(expect.arrayContaining(["sim/echo", "sim/lorem"]));
      // sim/embed only embeds: the playground, which chats, does not offer it.
      expect(models).not.toContain("sim/embed");
      expect(await page.textContent("#connection")).toContain("connect");

      await sendPrompt(page, "sim/echo", "Hello from a real browser, streamed token by token");
      await page.waitForSelector('#status[data-state="done"]', { timeout: 15_000 });
      expect(await page.textContent("#output")).toBe("Hello from a real browser, streamed token by token");
      expect(await page.textContent('#meta dd[data-key="model"]')).toBe("sim/echo");
      expect(await page.textContent('#meta dd[data-key="provider"]')).toBe("sim");
      expect(await page.textContent('#meta dd[data-key="cost"]')).toMatch(/^\$0\.\d+$/);
    },
    BROWSER_TEST_MS,
  );

  it(
    "shows tokens as they arrive and cancels mid-stream; the ledger records the call as cancelled",
    async () => {
      await page.fill("#max-tokens", "");
      await sendPrompt(page, "sim/lorem", "Tell me a long story");
      // Some text is on the page while the stream is still open: the reply streams.
      await page.waitForFunction('document.getElementById("output").textContent.length > 0', undefined, { timeout: 10_000 });
      expect(await page.getAttribute("#status", "data-state")).toBe("streaming");
      const requestId = await page.textContent('#meta dd[data-key="request id"]');
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      await page.click("#cancel");
      await page.waitForSelector('#status[data-state="cancelled"]', { timeout: 10_000 });
      const partial = (await page.textContent("#output")) ?? "";
      expect(partial.length).toBeGreaterThan(0);
      expect(await page.isEnabled("#send")).toBe(true);

      // The service saw the browser go away: its usage row says cancelled, with the tokens sent so far.
      const deadline = Date.now() + 5000;
      let row;
      while (!row && Date.now() < deadline) {
        await server.app.ledger.flush();
        row = await server.app.database.db
          .selectFrom("generations")
          .selectAll()
          .where("request_id", "=", requestId!)
          .executeTakeFirst();
        if (!row) await new Promise((r) => setTimeout(r, 20));
      }
      expect(row?.status).toBe("cancelled");
      expect(row?.tenant).toBe("acme");
      expect(row?.output_tokens).toBeGreaterThanOrEqual(1);
    },
    BROWSER_TEST_MS,
  );

  it(
    "switches to gRPC-web and streams over it",
    async () => {
      const contentTypes: string[] = [];
      const onRequest = (req: { url(): string; headers(): Record<string, string> }) => {
        if (req.url().includes("/llm.v1.LlmService/")) contentTypes.push(req.headers()["content-type"] ?? "");
      };
      page.on("request", onRequest);
      try {
        await page.check('input[name="protocol"][value="grpc-web"]');
        await page.waitForFunction('document.getElementById("connection").textContent.includes("grpc-web")', undefined, {
          timeout: 10_000,
        });
        await sendPrompt(page, "sim/echo", "Now over gRPC-web");
        await page.waitForSelector('#status[data-state="done"]', { timeout: 15_000 });
        expect(await page.textContent("#output")).toBe("Now over gRPC-web");
        expect(await page.textContent('#meta dd[data-key="model"]')).toBe("sim/echo");
      } finally {
        page.off("request", onRequest);
      }
      expect(contentTypes.length).toBeGreaterThanOrEqual(2);
      expect(contentTypes.every((t) => t.startsWith("application/grpc-web"))).toBe(true);
      await page.check('input[name="protocol"][value="connect"]');
      await page.waitForSelector('#connection[data-state="ok"]');
    },
    BROWSER_TEST_MS,
  );

  it(
    "draws this tenant's usage by model as an SVG chart, and saves a screenshot",
    async () => {
      await page.click("#refresh-usage");
      await page.waitForSelector('#usage-chart[data-state="ready"] svg g.row[data-model="sim/lorem"]', { timeout: 10_000 });
      const rows = await page.$$eval("#usage-chart svg g.row", (gs) => gs.map((g) => g.getAttribute("data-model")));
      expect(rows.sort()).toEqual(["sim/echo", "sim/lorem"]);
      // Each row has an input, an output and a cost bar with a real width.
      const widths = await page.$$eval("#usage-chart svg g.row rect", (rects) => rects.map((r) => Number(r.getAttribute("width"))));
      expect(widths).toHaveLength(6);
      expect(widths.every((w) => w > 0)).toBe(true);
      expect(await page.textContent("#usage-totals")).toMatch(/^tenant acme: 3 requests \(1 failed or cancelled/);

      mkdirSync(`${ROOT}test-results`, { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);
    },
    BROWSER_TEST_MS,
  );

  it(
    "works from a second origin listed in CORS_ORIGINS, streaming included",
    async () => {
      const p = await browser.newPage();
      try {
        await p.goto(`${allowed.origin}/playground/?server=${encodeURIComponent(server.baseUrl)}`);
        expect(await p.inputValue("#server")).toBe(server.baseUrl);
        await connect(p, server.key);
        expect(await p.$$eval("#model option", (o) => o.length)).toBeGreaterThanOrEqual(2);
        await sendPrompt(p, "sim/echo", "Across origins");
        await p.waitForSelector('#status[data-state="done"]', { timeout: 15_000 });
        expect(await p.textContent("#output")).toBe("Across origins");
      } finally {
        await p.close();
      }
    },
    BROWSER_TEST_MS,
  );

  it(
    "fails from an origin not in CORS_ORIGINS",
    async () => {
      const p = await browser.newPage();
      try {
        await p.goto(`${other.origin}/playground/?server=${encodeURIComponent(server.baseUrl)}`);
        await connect(p, server.key, "error");
        // The browser withholds the response: connect-web sees a failed fetch, not a status from the service.
        const status = (await p.textContent("#status")) ?? "";
        expect(status).toMatch(/^UNKNOWN: /);
        expect(await p.isDisabled("#send")).toBe(true);
      } finally {
        await p.close();
      }
    },
    BROWSER_TEST_MS,
  );
});
