import { rmSync } from "node:fs";
import { startApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { seededDataDir } from "./pglite-template.js";

export interface TestServer {
  app: App;
  baseUrl: string;
  port: number;
  /** An API key of tenant "acme" (role user). */
  key: string;
  /** An admin key of tenant "ops". */
  adminKey: string;
  close(): Promise<void>;
}

/** Starts the whole service on a free loopback port with its own PGlite directory (a copy of the run's template). */
export async function startTestServer(env: Record<string, string> = {}, options: Pick<AppOptions, "newRequestId"> = {}): Promise<TestServer> {
  const dataDir = seededDataDir("llm-test-");
  const config = loadConfig({ PORT: "0", DATA_DIR: dataDir, LEDGER_FLUSH_MS: "20", ...env });
  const app = await startApp(config, { logger: createLogger("error", { silent: true }), ...options });
  const key = (await app.keys.create({ name: "test", tenant: "acme" })).secret;
  const adminKey = (await app.keys.create({ name: "admin", tenant: "ops", role: "admin" })).secret;
  return {
    app,
    port: app.transport.port,
    baseUrl: `http://127.0.0.1:${app.transport.port}`,
    key,
    adminKey,
    async close() {
      await app.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
