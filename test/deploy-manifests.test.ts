/**
 * The plain Kubernetes manifests rendered from the Helm chart (deploy/manifests/, written by
 * scripts/render-manifests.sh; scripts/k8s-check.sh keeps them equal to the chart and checks them
 * against the Kubernetes schemas). No cluster runs here, so this checks what the service itself
 * would make of them: the pod's environment and the catalogue ConfigMap are a configuration
 * src/config.ts accepts, and the probes, drain and Service fit how the service serves and stops.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ENV_KEYS, loadConfig } from "../src/config.js";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  grpc?: { port: number; service?: string };
  periodSeconds?: number;
}
interface Container {
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: {
    clusterIP?: string;
    ports?: { name: string; port: number; targetPort: string | number; appProtocol?: string }[];
    maxReplicas?: number;
    minReplicas?: number;
    template?: { spec: { terminationGracePeriodSeconds?: number; containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] } };
  };
}

const dir = new URL("../deploy/manifests/", import.meta.url);
const objects: K8sObject[] = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(new URL(f, dir), "utf8")).map((d) => d.toJS() as K8sObject | null))
  .filter((o): o is K8sObject => o !== null);
const only = (kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found.map((o) => o.kind)).toEqual([kind]);
  return found[0]!;
};
const deployment = only("Deployment");
const pod = deployment.spec!.template!.spec;
const container = pod.containers[0]!;
const env = container.env ?? [];
const envValue = (name: string) => env.find((e) => e.name === name)?.value;

describe("deploy/manifests (rendered from deploy/helm/llm-service)", () => {
  it("sets only environment variables src/config.ts reads, and takes the database and Redis URLs from Secrets", () => {
    expect(env.length).toBeGreaterThan(0);
    expect(env.map((e) => e.name).filter((name) => !ENV_KEYS.includes(name))).toEqual([]);
    expect(env.find((e) => e.name === "DATABASE_URL")?.valueFrom?.secretKeyRef).toBeDefined();
    expect(env.find((e) => e.name === "REDIS_URL")?.valueFrom?.secretKeyRef).toBeDefined();
  });

  it("gives the service a configuration it accepts, with the ConfigMap's catalogue as LLM_CONFIG", () => {
    const catalogue = only("ConfigMap");
    const mount = container.volumeMounts?.find((m) => pod.volumes?.find((v) => v.name === m.name)?.configMap?.name === catalogue.metadata.name);
    expect(envValue("LLM_CONFIG")).toBe(`${mount?.mountPath}/catalogue.yaml`);
    const work = mkdtempSync(join(tmpdir(), "llm-manifests-"));
    try {
      const file = join(work, "catalogue.yaml");
      writeFileSync(file, catalogue.data?.["catalogue.yaml"] ?? "");
      const plain = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      const config = loadConfig({
        ...plain,
        LLM_CONFIG: file,
        DATABASE_URL: "postgres://llm@postgres:5432/llm",
        REDIS_URL: "redis://redis:6379",
      });
      expect(config.host).toBe("0.0.0.0");
      expect(config.catalogue.models.map((m) => m.id)).toEqual(["sim/echo", "sim/lorem"]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("probes the gRPC health service on the port the service listens on", () => {
    const port = Number(envValue("PORT"));
    expect(container.ports?.find((p) => p.name === "grpc")?.containerPort).toBe(port);
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) {
      expect(probe?.grpc).toEqual({ port });
    }
  });

  it("waits for the preStop sleep, SHUTDOWN_GRACE_MS and the flush before SIGKILL", () => {
    const command = container.lifecycle?.preStop?.exec?.command ?? [];
    expect(command[0]).toBe("sleep");
    const preStopSeconds = Number(command[1]);
    const graceSeconds = Math.ceil(Number(envValue("SHUTDOWN_GRACE_MS")) / 1000);
    expect(preStopSeconds).toBeGreaterThan(0);
    expect(graceSeconds).toBeGreaterThan(0);
    // The kubelet's countdown includes the preStop hook; what is left after the grace is for the flush.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopSeconds + graceSeconds + 5);
  });

  it("sets REPLICA_COUNT to the most pods the HorizontalPodAutoscaler may run", () => {
    const hpa = only("HorizontalPodAutoscaler");
    expect(Number(envValue("REPLICA_COUNT"))).toBe(hpa.spec?.maxReplicas);
    expect(hpa.spec?.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it("serves h2c through a Service and a headless Service, and keeps a pod up through disruptions", () => {
    const services = objects.filter((o) => o.kind === "Service");
    expect(services.map((s) => s.spec?.clusterIP === "None")).toEqual([false, true]);
    for (const s of services) {
      expect(s.spec?.ports?.[0]).toMatchObject({ targetPort: "grpc", appProtocol: "kubernetes.io/h2c", port: Number(envValue("PORT")) });
    }
    only("PodDisruptionBudget");
  });

  it("requests CPU and memory, and limits memory only", () => {
    expect(container.resources?.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources?.limits).toEqual({ memory: expect.any(String) });
  });
});
