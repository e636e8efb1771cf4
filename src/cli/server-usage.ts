/**
 * The service's command line: it takes no arguments, only `--help` (`-h`), since everything is set by
 * environment variables. `--help` prints them (the README's configuration table has each one's default
 * and meaning); anything else is a usage error, exit status 2, before any configuration is read.
 */
import { ENV_KEYS } from "../config.js";

export type ServerArgs = { kind: "run" } | { kind: "help" } | { kind: "error"; message: string };

export function parseServerArgs(argv: readonly string[]): ServerArgs {
  if (argv.length === 0) return { kind: "run" };
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) return { kind: "help" };
  const first = argv.find((a) => a !== "--help" && a !== "-h") ?? argv[0];
  return { kind: "error", message: `unknown argument ${JSON.stringify(first)}: the service takes no arguments, only environment variables (--help lists them)` };
}

/** The usage text: how to run it, and every environment variable it reads. */
export function serverUsage(keys: readonly string[] = ENV_KEYS): string {
  const width = Math.max(...keys.map((k) => k.length)) + 2;
  const perLine = Math.max(1, Math.floor(100 / width));
  const rows: string[] = [];
  for (let i = 0; i < keys.length; i += perLine) {
    rows.push(
      `  ${keys
        .slice(i, i + perLine)
        .map((k) => k.padEnd(width))
        .join("")
        .trimEnd()}`,
    );
  }
  return [
    "usage: npm start    (or: node dist/src/main.js)",
    "",
    "Serves llm.v1.LlmService (gRPC, Connect and gRPC-web on one port), grpc.health.v1.Health and server",
    "reflection; drains on SIGTERM. It takes no arguments: it is configured by these environment variables,",
    "each described with its default in README.md, section Configuration:",
    "",
    ...rows,
    "",
    "Exit status: 0 after a clean drain, 1 when start-up or shutdown fails, 2 for a bad setting or argument.",
    "",
  ].join("\n");
}
