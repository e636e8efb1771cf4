/**
 * No Docker engine runs here, so the deployment files are checked statically: they parse,
 * name the expected services, and set only environment variables src/config.ts reads.
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ENV_KEYS, loadConfig } from "../src/config.js";
import { GatewayMetrics } from "../src/telemetry/metrics.js";

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

  it("runs the same entry point with the same node flags as npm start, as a non-root user", () => {
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    const args = pkg.scripts["start"]?.split(/\s+/) ?? [];
    expect(args[0]).toBe("node");
    expect(args.at(-1)).toBe("dist/src/main.js");
    // V8's young generation is capped (bench/README.md, "Memory under load"); the benchmark starts the gateway with these flags too.
    expect(args.slice(1, -1)).toEqual(["--max-semi-space-size=16"]);
    expect(dockerfile).toMatch(new RegExp(`^CMD \\[${args.map((a) => `"${a}"`).join(", ")}\\]`, "m"));
    expect(dockerfile).toMatch(/^USER (?!root\b)\S+/m);
    expect(dockerfile).toMatch(/^EXPOSE 8080\b/m);
  });
});

describe("Dockerfile healthcheck and playground", () => {
  it("checks health with the gRPC health protocol, through the probe the build compiles", () => {
    const healthcheck = /^HEALTHCHECK\s[^\n]*\\\n\s*CMD \["node", "([^"]+)"\]/m.exec(dockerfile);
    expect(healthcheck?.[1]).toBe("dist/src/cli/healthcheck.js");
    // dist/src/cli/healthcheck.js is tsc's output of src/cli/healthcheck.ts, which calls grpc.health.v1.Health/Check.
    const source = read("src/cli/healthcheck.ts");
    expect(source).toMatch(/createGrpcTransport/);
    expect(source).toMatch(/from "..\/..\/gen\/ts\/grpc\/health\/v1\/health_pb.js"/);
  });

  it("builds the /playground page into the image (dist/web is copied with dist)", () => {
    expect(dockerfile).toMatch(/^COPY web \.\/web$/m);
    expect(dockerfile).toMatch(/^RUN npm run build:server && npm run build:web\b/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
  });
});

describe("dockerfileEnvNames", () => {
  it("reads key=value pairs, continuations and the legacy form", () => {
    const text = ["FROM node:24-slim", "ENV A=1 \\", "    B=two", "env C three words", 'ENV D="x y" E=z'].join("\n");
    expect(dockerfileEnvNames(text)).toEqual(["A", "B", "C", "D", "E"]);
  });
});

describe("the observability stack in docker-compose.yml", () => {
  const env = (services["llm-service"]?.environment ?? {}) as Record<string, string>;
  const mounts = (name: string): [string, string][] =>
    ((services[name] as { volumes?: string[] } | undefined)?.volumes ?? [])
      .filter((v) => v.startsWith("./"))
      .map((v) => v.split(":").slice(0, 2) as [string, string]);

  it("adds Jaeger (OTLP), Prometheus and Grafana", () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(["jaeger", "prometheus", "grafana"]));
    expect(services["jaeger"]?.image).toMatch(/^jaegertracing\/jaeger:2\./);
    expect(services["prometheus"]?.image).toMatch(/^prom\/prometheus:v3\./);
    expect(services["grafana"]?.image).toMatch(/^grafana\/grafana:\d/);
  });

  it("sends the service's traces to Jaeger's OTLP/HTTP port, as the config reads it", () => {
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{[^}]*\}/g, "")]));
    const config = loadConfig({ ...resolved, DATABASE_URL: undefined, REDIS_URL: undefined });
    expect(config.telemetry.otlp?.url).toBe("http://jaeger:4318/v1/traces");
    expect(config.telemetry.serviceName).toBe("llm-service");
  });

  it("mounts files that exist", () => {
    const all = [...mounts("prometheus"), ...mounts("grafana")];
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const [host] of all) expect(existsSync(new URL(host, root)), host).toBe(true);
  });

  it("has Prometheus scrape /metrics on the service's port", () => {
    const prometheus = parseYaml(read("observability/prometheus.yml")) as {
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prometheus.scrape_configs.find((j) => j.job_name === "llm-service");
    expect(job?.metrics_path ?? "/metrics").toBe("/metrics");
    expect(job?.static_configs.flatMap((s) => s.targets)).toEqual([`llm-service:${env["PORT"]}`]);
  });

  describe("the Grafana dashboard", () => {
    interface Panel {
      type: string;
      title: string;
      datasource?: { uid: string };
      targets?: { expr: string; datasource?: { uid: string } }[];
    }
    const dashboard = JSON.parse(read("observability/grafana/dashboards/llm-service.json")) as { uid: string; panels: Panel[] };
    const datasources = parseYaml(read("observability/grafana/provisioning/datasources/datasources.yaml")) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    const queries = dashboard.panels.flatMap((p) => p.targets ?? []);

    it("queries only provisioned data sources", () => {
      const uids = new Set(datasources.datasources.map((d) => d.uid));
      expect(uids).toEqual(new Set(["prometheus", "jaeger"]));
      for (const p of dashboard.panels.filter((p) => p.type !== "row")) expect(uids.has(p.datasource?.uid ?? ""), p.title).toBe(true);
      for (const q of queries) expect(q.datasource?.uid).toBe("prometheus");
    });

    it("shows what the issue asks for", () => {
      const exprs = queries.map((q) => q.expr).join("\n");
      for (const metric of [
        "rpc_server_call_duration_seconds_count", // request rate and errors by code
        "rpc_server_call_duration_seconds_bucket", // latency percentiles
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "llm_gateway_tokens_total",
        "llm_gateway_cost_usd_total",
        "llm_gateway_cache_lookups_total",
        "llm_gateway_circuit_state",
        "llm_ledger_queue_depth",
      ]) {
        expect(exprs).toContain(metric);
      }
    });

    it("refers only to metrics the service exports", () => {
      const metrics = new GatewayMetrics({ processMetrics: false });
      metrics.observeLedger({ pending: 0, spooled: 0, written: 0, dropped: 0, deadLettered: 0 });
      metrics.observeCircuits(() => []);
      const exported = new Set(metrics.registry.getMetricsAsArray().map((m) => m.name));
      // Metric names: the identifiers left once grouping clauses and label matchers are gone.
      const names = (expr: string) =>
        [...expr.replace(/\b(?:by|without)\s*\([^)]*\)/g, "").replace(/\{[^}]*\}/g, "").matchAll(/\b(?:rpc|gen_ai|llm)_[a-z0-9_]+/g)].map((m) => m[0]);
      const referenced = new Set(queries.flatMap((q) => names(q.expr)));
      expect(referenced.size).toBeGreaterThan(10);
      for (const name of referenced) expect(exported.has(name.replace(/_(bucket|sum|count)$/, "")), name).toBe(true);
    });
  });
});
