/**
 * No Docker engine runs here, so the deployment files are checked statically: they parse,
 * name the expected services, and set only environment variables src/config.ts reads.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ENV_KEYS } from "../src/config.js";

const root = new URL("../", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), "utf8");

interface ComposeService {
  image?: string;
  build?: unknown;
  environment?: Record<string, unknown> | string[];
  healthcheck?: { test?: unknown };
}

interface ComposeFile {
  services?: Record<string, ComposeService>;
}

/** Variable names of a service's `environment`, in either of compose's two forms (map or KEY=value list). */
function environmentNames(service: ComposeService): string[] {
  const env = service.environment;
  if (env === undefined) return [];
  if (Array.isArray(env)) return env.map((entry) => String(entry).split("=", 1)[0]!.trim());
  return Object.keys(env);
}

/** Variable names set by a Dockerfile's ENV instructions (`ENV A=1 B=2`, line continuations, legacy `ENV A 1`). */
function dockerfileEnvNames(dockerfile: string): string[] {
  const names: string[] = [];
  const lines = dockerfile.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  for (const line of lines) {
    const body = /^\s*ENV\s+(.*)$/i.exec(line)?.[1]?.trim();
    if (!body) continue;
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(body)) {
      for (const match of body.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=/g)) names.push(match[1]!);
    } else {
      names.push(body.split(/\s+/, 1)[0]!);
    }
  }
  return names;
}

const compose = parseYaml(read("docker-compose.yml")) as ComposeFile;
const services = compose.services ?? {};
const dockerfile = read("Dockerfile");

describe("docker-compose.yml", () => {
  it("defines the service, Postgres and Redis", () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(["llm-service", "postgres", "redis"]));
    expect(services["llm-service"]?.build).toBeDefined();
    expect(services["postgres"]?.image).toMatch(/^postgres:16/);
    expect(services["redis"]?.image).toMatch(/^redis:7/);
  });

  it("sets only environment variables the config knows", () => {
    const names = environmentNames(services["llm-service"] ?? {});
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((name) => !ENV_KEYS.includes(name))).toEqual([]);
  });

  it("points the service at the compose Postgres and Redis", () => {
    const env = services["llm-service"]?.environment as Record<string, string>;
    expect(env["DATABASE_URL"]).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(env["REDIS_URL"]).toMatch(/^redis:\/\/redis:6379/);
    expect(env["HOST"]).toBe("0.0.0.0");
  });

  it("gives Postgres and Redis healthchecks", () => {
    expect(services["postgres"]?.healthcheck?.test).toBeDefined();
    expect(services["redis"]?.healthcheck?.test).toBeDefined();
  });
});

describe("Dockerfile", () => {
  it("sets only environment variables the config knows", () => {
    const names = dockerfileEnvNames(dockerfile);
    expect(names).toEqual(expect.arrayContaining(["HOST", "PORT", "DATA_DIR"]));
    expect(names.filter((name) => !ENV_KEYS.includes(name))).toEqual([]);
  });

  it("runs the same entry point as npm start, as a non-root user", () => {
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    const entry = pkg.scripts["start"]?.replace(/^node\s+/, "");
    expect(entry).toBe("dist/src/main.js");
    expect(dockerfile).toMatch(new RegExp(`^CMD \\["node", "${entry}"\\]`, "m"));
    expect(dockerfile).toMatch(/^USER (?!root\b)\S+/m);
    expect(dockerfile).toMatch(/^EXPOSE 8080\b/m);
  });
});

describe("dockerfileEnvNames", () => {
  it("reads key=value pairs, continuations and the legacy form", () => {
    const text = ["FROM node:24-slim", "ENV A=1 \\", "    B=two", "env C three words", 'ENV D="x y" E=z'].join("\n");
    expect(dockerfileEnvNames(text)).toEqual(["A", "B", "C", "D", "E"]);
  });
});
