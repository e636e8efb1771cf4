/** Reads the config once, starts the service, drains on SIGTERM/SIGINT. */
import { startApp } from "./app.js";
import { parseServerArgs, serverUsage } from "./cli/server-usage.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger, throttledWarn } from "./telemetry/logger.js";
import { createTelemetry } from "./telemetry/telemetry.js";

async function main(): Promise<void> {
  const args = parseServerArgs(process.argv.slice(2));
  if (args.kind === "help") {
    process.stdout.write(serverUsage());
    return;
  }
  if (args.kind === "error") {
    process.stderr.write(`llm-service: ${args.message}\n`);
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`llm-service: bad configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const telemetry = createTelemetry(config.telemetry, {
    onExportError: (err) => warnOften("trace export failed; spans dropped", { error: err.message }),
  });
  // Every log line written while a call is served carries its request id, trace id and span id.
  const logger = createLogger(config.logLevel, { context: () => telemetry.tracing.logFields() });
  const warnOften = throttledWarn(logger);
  const app = await startApp(config, {
    logger,
    telemetry,
    compactHeapBeforeListening: true,
    onDevelopmentKey: (secret) =>
      process.stderr.write(
        `\nNo API keys existed, so a development key (tenant "default", admin) was created.\n` +
          `It is shown this once and stored only as a hash:\n\n  export LLM_API_KEY=${secret}\n\n`,
      ),
  });
  let signals = 0;
  const stop = (signal: string) => {
    signals++;
    if (signals > 1) {
      logger.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    logger.info("shutting down", { signal });
    app.shutdown().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error("shutdown failed", { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`llm-service: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
