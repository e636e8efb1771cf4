import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, ENV_KEYS, loadConfig } from "../src/config.js";

const dir = mkdtempSync(join(tmpdir(), "llm-config-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function catalogueFile(extension: "yaml" | "json", text: string): string {
  const path = join(dir, `catalogue-${++files}.${extension}`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError loadConfig throws for env; fails the test when it does not throw one. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

const yamlCatalogue = `
models:
  - id: acme/small
    aliases: [small]
    contextWindow: 8192
    maxOutputTokens: 1024
    price: { inputPerMillion: 0.25, outputPerMillion: 1 }
    deployments:
      - provider: sim
        model: echo
    fallbacks: [acme/large]
  - id: acme/large
    contextWindow: 131072
    maxOutputTokens: 4096
    deployments:
      - provider: sim
        model: lorem
        weight: 3
        options: { interTokenMs: 5 }
`;

describe("loadConfig", () => {
  it("defaults to 127.0.0.1:8080, the embedded database and the built-in sim catalogue", () => {
    const config = loadConfig({});
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(8080);
    expect(config.tls).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.dataDir).toBe("./.data");
    expect(config.corsOrigins).toEqual([]);
    expect(config.maxRequestBytes).toBe(4 * 1024 * 1024);
    expect(config.logLevel).toBe("info");
    expect(config.catalogueSource).toBe("built-in sim catalogue");
    const ids = config.catalogue.models.map((m) => m.id);
    expect(ids).toContain("sim/echo");
    expect(ids).toContain("sim/lorem");
    expect(config.catalogue.models.every((m) => m.deployments.every((d) => d.provider === "sim"))).toBe(true);
  });

  it("reads typed values from the environment", () => {
    const config = loadConfig({
      HOST: "0.0.0.0",
      PORT: "9090",
      DATABASE_URL: "postgres://llm@127.0.0.1:5432/llm",
      REDIS_URL: "redis://127.0.0.1:6379",
      LOG_LEVEL: "debug",
      MAX_REQUEST_BYTES: "1048576",
    });
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(9090);
    expect(config.databaseUrl).toBe("postgres://llm@127.0.0.1:5432/llm");
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(config.logLevel).toBe("debug");
    expect(config.maxRequestBytes).toBe(1_048_576);
  });

  it("names PORT when it is not a number", () => {
    expect(configError({ PORT: "abc" }).message).toContain("PORT");
  });

  it("names PORT when it is out of range", () => {
    expect(configError({ PORT: "70000" }).message).toContain("PORT");
  });

  it("names DATABASE_URL when it is not a postgres:// URL", () => {
    expect(configError({ DATABASE_URL: "mysql://x" }).message).toContain("DATABASE_URL");
  });

  it("names LOG_LEVEL when it is not a known level", () => {
    expect(configError({ LOG_LEVEL: "verbose" }).message).toContain("LOG_LEVEL");
  });

  it("refuses TLS_CERT_FILE without TLS_KEY_FILE, naming both", () => {
    const message = configError({ TLS_CERT_FILE: "/etc/llm/cert.pem" }).message;
    expect(message).toContain("TLS_CERT_FILE");
    expect(message).toContain("TLS_KEY_FILE");
  });

  it("takes TLS from TLS_CERT_FILE and TLS_KEY_FILE together", () => {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    writeFileSync(cert, "cert");
    writeFileSync(key, "key");
    const config = loadConfig({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key });
    expect(config.tls).toEqual({ certFile: cert, keyFile: key });
  });

  it("names the TLS variable whose file cannot be read", () => {
    const cert = join(dir, "cert2.pem");
    writeFileSync(cert, "cert");
    expect(configError({ TLS_CERT_FILE: cert, TLS_KEY_FILE: join(dir, "missing.pem") }).message).toContain("TLS_KEY_FILE");
  });

  it("treats an empty value as unset, so PORT= means the default port", () => {
    expect(loadConfig({ PORT: "", SHUTDOWN_GRACE_MS: " " }).port).toBe(8080);
  });

  it("refuses a default deadline longer than the maximum", () => {
    expect(configError({ DEFAULT_DEADLINE_MS: "5000", MAX_DEADLINE_MS: "1000" }).message).toContain("DEFAULT_DEADLINE_MS");
  });

  it("parses CORS_ORIGINS as a comma-separated list, ignoring blanks and spaces", () => {
    const config = loadConfig({ CORS_ORIGINS: "https://app.example.com, http://localhost:5173,," });
    expect(config.corsOrigins).toEqual(["https://app.example.com", "http://localhost:5173"]);
  });

  it("names CORS_ORIGINS when an entry is not a URL", () => {
    expect(configError({ CORS_ORIGINS: "https://app.example.com,not a url" }).message).toContain("CORS_ORIGINS");
  });

  it("takes OLLAMA_HOST in every form Ollama takes: host, host:port, :port, [ipv6]:port or a URL", () => {
    const host = (value: string) => loadConfig({ OLLAMA_HOST: value }).providers.ollama.host;
    expect(host("127.0.0.1:11434")).toBe("http://127.0.0.1:11434");
    expect(host("gpu-box:8000")).toBe("http://gpu-box:8000");
    expect(host("gpu-box")).toBe("http://gpu-box:11434");
    expect(host(":11500")).toBe("http://127.0.0.1:11500");
    expect(host("0.0.0.0")).toBe("http://0.0.0.0:11434");
    expect(host("[::1]:9000")).toBe("http://[::1]:9000");
    expect(host("::1")).toBe("http://[::1]:11434");
    expect(host("https://ollama.example.com/")).toBe("https://ollama.example.com");
    expect(host("http://127.0.0.1:11434")).toBe("http://127.0.0.1:11434");
    expect(host(" ")).toBeUndefined();
  });

  it("names OLLAMA_HOST when it is no host Ollama would take", () => {
    for (const value of ["not a host", "ftp://127.0.0.1", "gpu-box:port"]) {
      expect(configError({ OLLAMA_HOST: value }).message).toContain("OLLAMA_HOST");
    }
  });
});

describe("the catalogue file (LLM_CONFIG)", () => {
  it("loads a YAML catalogue and fills in defaults", () => {
    const path = catalogueFile("yaml", yamlCatalogue);
    const config = loadConfig({ LLM_CONFIG: path });
    expect(config.catalogueSource).toBe(path);
    const [small, large] = config.catalogue.models;
    expect(small).toMatchObject({
      id: "acme/small",
      aliases: ["small"],
      contextWindow: 8192,
      price: { inputPerMillion: 0.25, outputPerMillion: 1 },
      capabilities: ["chat", "streaming"],
      fallbacks: ["acme/large"],
    });
    expect(small?.deployments[0]).toEqual({ provider: "sim", model: "echo", weight: 1, options: {} });
    expect(large?.aliases).toEqual([]);
    // No price: the catalogue falls back to the default price table (see test/router/router.test.ts).
    expect(large?.price).toBeUndefined();
    expect(large?.deployments[0]).toEqual({ provider: "sim", model: "lorem", weight: 3, options: { interTokenMs: 5 } });
  });

  it("loads the same catalogue written as JSON", () => {
    const yamlConfig = loadConfig({ LLM_CONFIG: catalogueFile("yaml", yamlCatalogue) });
    const json = JSON.stringify(yamlConfig.catalogue, null, 2);
    const jsonConfig = loadConfig({ LLM_CONFIG: catalogueFile("json", json) });
    expect(jsonConfig.catalogue).toEqual(yamlConfig.catalogue);
  });

  it("names the duplicated alias", () => {
    const path = catalogueFile(
      "yaml",
      `
models:
  - id: a
    aliases: [fast]
    contextWindow: 1000
    maxOutputTokens: 100
    deployments: [{ provider: sim, model: echo }]
  - id: b
    aliases: [fast]
    contextWindow: 1000
    maxOutputTokens: 100
    deployments: [{ provider: sim, model: lorem }]
`,
    );
    const message = configError({ LLM_CONFIG: path }).message;
    expect(message).toContain("LLM_CONFIG");
    expect(message).toContain("duplicate");
    expect(message).toContain('"fast"');
  });

  it("names an unknown fallback model", () => {
    const path = catalogueFile(
      "json",
      JSON.stringify({
        models: [
          {
            id: "a",
            contextWindow: 1000,
            maxOutputTokens: 100,
            deployments: [{ provider: "sim", model: "echo" }],
            fallbacks: ["missing-model"],
          },
        ],
      }),
    );
    const message = configError({ LLM_CONFIG: path }).message;
    expect(message).toContain("fallbacks");
    expect(message).toContain('"missing-model"');
  });

  it("names the field that fails validation", () => {
    const path = catalogueFile(
      "yaml",
      "models:\n  - id: a\n    contextWindow: -1\n    maxOutputTokens: 100\n    deployments: [{ provider: sim, model: echo }]\n",
    );
    const message = configError({ LLM_CONFIG: path }).message;
    expect(message).toContain("LLM_CONFIG");
    expect(message).toContain("contextWindow");
  });

  it("rejects keys the schema does not know, so a typo is not silently ignored", () => {
    const path = catalogueFile(
      "yaml",
      "models:\n  - id: a\n    contextWindow: 1000\n    maxOutputTokens: 100\n    fallback: [b]\n    deployments: [{ provider: sim, model: echo }]\n",
    );
    expect(configError({ LLM_CONFIG: path }).message).toContain("fallback");
  });

  it("names LLM_CONFIG when the file is missing or unparsable", () => {
    expect(configError({ LLM_CONFIG: join(dir, "no-such-file.yaml") }).message).toContain("LLM_CONFIG");
    expect(configError({ LLM_CONFIG: catalogueFile("json", "{ not json") }).message).toContain("LLM_CONFIG");
  });
});

describe("README", () => {
  const readme = () => readFileSync(new URL("../README.md", import.meta.url), "utf8");

  it("documents every environment variable the config reads, and no others", () => {
    const section = readme().split(/^## /m).find((s) => s.startsWith("Configuration"));
    expect(section, "README has a '## Configuration' section").toBeDefined();
    const documented = [...(section ?? "").matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...ENV_KEYS].sort());
  });

  it("shows a catalogue example that loads", () => {
    const example = /^### The model catalogue[\s\S]*?```yaml\n([\s\S]*?)```/m.exec(readme())?.[1];
    expect(example, "README has a yaml catalogue example").toBeDefined();
    const config = loadConfig({ LLM_CONFIG: catalogueFile("yaml", example ?? ""), OPENROUTER_API_KEY: "sk-example" });
    expect(config.catalogue.models.length).toBeGreaterThan(0);
    expect(config.credentials.get("OPENROUTER_API_KEY")).toBe("sk-example");
  });
});
