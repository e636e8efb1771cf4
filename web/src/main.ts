/**
 * The playground: paste a key, pick a model from ListModels, stream a reply from StreamGenerate
 * (Connect or gRPC-web, through the TypeScript SDK's browser build), cancel it, and see this
 * key's tenant usage from GetUsage by model.
 */
import {
  Code,
  codeName,
  ConnectError,
  createLlmClient,
  errorInfoOf,
  retryDelayMsOf,
  Role,
  type LlmClient,
  type LlmProtocol,
  type Model,
} from "@llm-service/sdk";
import { formatMs, formatTokens, formatUsd } from "./format.js";
import { usageChart } from "./usage-chart.js";

const KEY_STORAGE = "llm-playground-key";
/** A streamed reply may take a while; the SDK's default deadline (60 s) would do too. */
const STREAM_TIMEOUT_MS = 120_000;

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node as T;
}

const ui = {
  connectForm: byId<HTMLFormElement>("connect-form"),
  apiKey: byId<HTMLInputElement>("api-key"),
  server: byId<HTMLInputElement>("server"),
  connection: byId<HTMLParagraphElement>("connection"),
  promptForm: byId<HTMLFormElement>("prompt-form"),
  model: byId<HTMLSelectElement>("model"),
  maxTokens: byId<HTMLInputElement>("max-tokens"),
  prompt: byId<HTMLTextAreaElement>("prompt"),
  send: byId<HTMLButtonElement>("send"),
  cancel: byId<HTMLButtonElement>("cancel"),
  status: byId<HTMLParagraphElement>("status"),
  output: byId<HTMLPreElement>("output"),
  meta: byId<HTMLDListElement>("meta"),
  refreshUsage: byId<HTMLButtonElement>("refresh-usage"),
  usageTotals: byId<HTMLParagraphElement>("usage-totals"),
  usageChart: byId<HTMLDivElement>("usage-chart"),
};

let client: LlmClient | undefined;
let streaming: AbortController | undefined;

function protocol(): LlmProtocol {
  const checked = document.querySelector<HTMLInputElement>('input[name="protocol"]:checked');
  return checked?.value === "grpc-web" ? "grpc-web" : "connect";
}

function baseUrl(): string {
  return ui.server.value.trim() || location.origin;
}

function setState(node: HTMLElement, state: string, text: string): void {
  node.dataset["state"] = state;
  node.textContent = text;
}

/** "NOT_FOUND: model … (MODEL_NOT_FOUND, request 1234…, retry in 1.5 s)" from any error. */
function describe(err: unknown): string {
  const e = ConnectError.from(err);
  const info = errorInfoOf(e);
  const retry = retryDelayMsOf(e);
  const extra = [
    info?.reason,
    info?.metadata["request_id"] ? `request ${info.metadata["request_id"]}` : undefined,
    retry !== undefined ? `retry in ${formatMs(retry)}` : undefined,
  ].filter(Boolean);
  return `${codeName(e.code)}: ${e.rawMessage}${extra.length ? ` (${extra.join(", ")})` : ""}`;
}

function newClient(): LlmClient {
  return createLlmClient({
    baseUrl: baseUrl(),
    apiKey: ui.apiKey.value.trim(),
    protocol: protocol(),
    // JSON on the wire is easier to read in the browser's network panel; the SDK's default is binary.
    useBinaryFormat: protocol() === "grpc-web",
  });
}

function modelLabel(m: Model): string {
  const price = `${formatUsd(m.inputPriceUsdNanosPerMillion)} / ${formatUsd(m.outputPriceUsdNanosPerMillion)} per M tokens`;
  return `${m.id} — ${m.provider}, ${price}`;
}

async function connect(): Promise<void> {
  const key = ui.apiKey.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  client = newClient();
  setState(ui.connection, "busy", `connecting (${protocol()})…`);
  try {
    // The playground chats: models that only embed (capability "embeddings", no "chat") are not offered.
    const models = (await client.listModels({}, { timeoutMs: 10_000 })).models.filter(
      (m) => m.capabilities.includes("chat") || !m.capabilities.includes("embeddings"),
    );
    const previous = ui.model.value;
    ui.model.replaceChildren(
      ...models.map((m) => {
        const option = new Option(modelLabel(m), m.id);
        option.selected = m.id === previous;
        return option;
      }),
    );
    ui.model.disabled = models.length === 0;
    ui.send.disabled = models.length === 0 || streaming !== undefined;
    ui.refreshUsage.disabled = false;
    const host = new URL(baseUrl()).host;
    setState(ui.connection, "ok", `${host} · ${protocol()} · ${models.length} model${models.length === 1 ? "" : "s"}`);
    setState(ui.status, "idle", "");
    await refreshUsage();
  } catch (err) {
    client = undefined;
    ui.model.disabled = true;
    ui.send.disabled = true;
    ui.refreshUsage.disabled = true;
    setState(ui.connection, "error", "not connected");
    setState(ui.status, "error", describe(err));
  }
}

function showMeta(entries: [string, string][]): void {
  ui.meta.replaceChildren(
    ...entries.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dd.dataset["key"] = k;
      return [dt, dd];
    }),
  );
}

async function send(): Promise<void> {
  if (!client || streaming) return;
  const controller = new AbortController();
  streaming = controller;
  ui.send.disabled = true;
  ui.cancel.disabled = false;
  ui.output.textContent = "";
  ui.meta.replaceChildren();
  setState(ui.status, "streaming", "streaming…");
  const t0 = performance.now();
  let firstToken: number | undefined;
  let started: [string, string][] = [];
  const maxOutputTokens = Number.parseInt(ui.maxTokens.value, 10);
  try {
    const stream = client.streamGenerate(
      {
        model: ui.model.value,
        messages: [{ role: Role.USER, content: ui.prompt.value }],
        ...(Number.isFinite(maxOutputTokens) && maxOutputTokens > 0 ? { maxOutputTokens } : {}),
      },
      { signal: controller.signal, timeoutMs: STREAM_TIMEOUT_MS },
    );
    for await (const { event } of stream) {
      switch (event.case) {
        case "started":
          started = [
            ["model", event.value.model],
            ["provider", event.value.provider],
            ["request id", event.value.id],
          ];
          showMeta(started);
          break;
        case "delta":
          firstToken ??= performance.now() - t0;
          ui.output.append(event.value.text);
          break;
        case "completed": {
          const u = event.value.usage;
          showMeta([
            ...started,
            ["tokens", `${formatTokens(u?.inputTokens ?? 0n)} in · ${formatTokens(u?.outputTokens ?? 0n)} out`],
            ["cost", formatUsd(event.value.costUsdNanos)],
            ["first token", firstToken === undefined ? "—" : formatMs(firstToken)],
            ["total", formatMs(performance.now() - t0)],
            ["attempts", String(event.value.attempts)],
            ["cached", event.value.cached ? "yes" : "no"],
          ]);
          break;
        }
        case undefined:
          break;
      }
    }
    setState(ui.status, "done", "done");
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code === Code.Canceled && controller.signal.aborted) setState(ui.status, "cancelled", "cancelled");
    else setState(ui.status, "error", describe(e));
  } finally {
    streaming = undefined;
    ui.cancel.disabled = true;
    ui.send.disabled = !client;
  }
  await refreshUsage();
}

async function refreshUsage(): Promise<void> {
  if (!client) return;
  ui.refreshUsage.disabled = true;
  try {
    const usage = await client.getUsage({}, { timeoutMs: 10_000 });
    const t = usage.totals;
    ui.usageTotals.textContent = t
      ? `tenant ${usage.tenant}: ${t.requests} requests (${t.failed} failed or cancelled, ${t.cached} cached), ` +
        `${formatTokens(t.usage?.totalTokens ?? 0n)} tokens, ${formatUsd(t.costUsdNanos)}`
      : `tenant ${usage.tenant}`;
    if (usage.byModel.length === 0) {
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = "No usage yet: send a prompt.";
      ui.usageChart.replaceChildren(hint);
      ui.usageChart.dataset["state"] = "empty";
    } else {
      ui.usageChart.replaceChildren(
        usageChart(
          usage.byModel.map((m) => ({
            model: m.model,
            inputTokens: m.totals?.usage?.inputTokens ?? 0n,
            outputTokens: m.totals?.usage?.outputTokens ?? 0n,
            costUsdNanos: m.totals?.costUsdNanos ?? 0n,
            requests: m.totals?.requests ?? 0n,
          })),
        ),
      );
      ui.usageChart.dataset["state"] = "ready";
    }
  } catch (err) {
    ui.usageTotals.textContent = `usage unavailable: ${describe(err)}`;
  } finally {
    ui.refreshUsage.disabled = !client;
  }
}

ui.connectForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void connect();
});
ui.promptForm.addEventListener("submit", (e) => {
  e.preventDefault();
  void send();
});
ui.cancel.addEventListener("click", () => streaming?.abort());
ui.refreshUsage.addEventListener("click", () => void refreshUsage());
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="protocol"]')) {
  // A new protocol means a new transport; reconnect when a key is there.
  radio.addEventListener("change", () => void (ui.apiKey.value.trim() && connect()));
}

// ?server=http://host:port points the page at another service (which must allow this origin in CORS_ORIGINS).
const serverParam = new URLSearchParams(location.search).get("server");
if (serverParam) ui.server.value = serverParam;
const savedKey = sessionStorage.getItem(KEY_STORAGE);
if (savedKey) ui.apiKey.value = savedKey;
