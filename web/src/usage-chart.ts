/**
 * GetUsage's per-model totals as an inline SVG: for each model, a bar of tokens (input and output
 * stacked) and a bar of cost, each scaled to the largest model. Hand-written: no chart library.
 */
import { formatTokens, formatUsd } from "./format.js";

export interface ModelBar {
  model: string;
  inputTokens: bigint;
  outputTokens: bigint;
  costUsdNanos: bigint;
  requests: bigint;
}

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const LABEL_W = 150;
const GAP = 24;
const TOKENS_W = 300;
const COST_W = WIDTH - LABEL_W - TOKENS_W - 2 * GAP;
const ROW_H = 34;
const BAR_H = 16;
const TOP = 44;

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Record<string, string | number>,
  ...children: (SVGElement | string)[]
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of children) node.append(child);
  return node;
}

/** Width of `value` on a bar of `width` pixels whose full length is `max` (at least 1 px when non-zero). */
function scale(value: bigint, max: bigint, width: number): number {
  if (max <= 0n || value <= 0n) return 0;
  return Math.max(1, (Number(value) / Number(max)) * width);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function usageChart(rows: readonly ModelBar[]): SVGSVGElement {
  const sorted = [...rows].sort((a, b) => Number(b.inputTokens + b.outputTokens - (a.inputTokens + a.outputTokens)));
  const maxTokens = sorted.reduce((m, r) => (r.inputTokens + r.outputTokens > m ? r.inputTokens + r.outputTokens : m), 0n);
  const maxCost = sorted.reduce((m, r) => (r.costUsdNanos > m ? r.costUsdNanos : m), 0n);
  const height = TOP + sorted.length * ROW_H + 8;
  const tokensX = LABEL_W + GAP;
  const costX = tokensX + TOKENS_W + GAP;

  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": "Tokens and cost by model",
    class: "usage-svg",
  });
  svg.append(el("title", {}, "Tokens (input and output) and cost by model"));

  // Legend and column titles.
  const legend = el("g", { class: "legend", transform: "translate(0, 14)" });
  legend.append(
    el("text", { x: 0, y: 4, class: "col-title" }, "model"),
    el("rect", { x: tokensX, y: -6, width: 10, height: 10, rx: 2, class: "bar-input" }),
    el("text", { x: tokensX + 14, y: 4 }, "input tokens"),
    el("rect", { x: tokensX + 110, y: -6, width: 10, height: 10, rx: 2, class: "bar-output" }),
    el("text", { x: tokensX + 124, y: 4 }, "output tokens"),
    el("rect", { x: costX, y: -6, width: 10, height: 10, rx: 2, class: "bar-cost" }),
    el("text", { x: costX + 14, y: 4 }, "cost (USD)"),
  );
  svg.append(legend, el("line", { x1: 0, x2: WIDTH, y1: TOP - 14, y2: TOP - 14, class: "rule" }));

  sorted.forEach((row, i) => {
    const y = TOP + i * ROW_H;
    const mid = y + BAR_H / 2 + 4;
    const total = row.inputTokens + row.outputTokens;
    const inW = scale(row.inputTokens, maxTokens, TOKENS_W - 60);
    const outW = scale(row.outputTokens, maxTokens, TOKENS_W - 60);
    const costW = scale(row.costUsdNanos, maxCost, COST_W - 90);
    const g = el("g", { class: "row", "data-model": row.model });
    g.append(
      el("title", {}, `${row.model}: ${row.requests} requests, ${row.inputTokens} input + ${row.outputTokens} output tokens, ${formatUsd(row.costUsdNanos)}`),
      el("text", { x: 0, y: mid, class: "label" }, truncate(row.model, 22)),
      el("rect", { x: tokensX, y, width: inW.toFixed(1), height: BAR_H, rx: 3, class: "bar-input" }),
      el("rect", { x: (tokensX + inW).toFixed(1), y, width: outW.toFixed(1), height: BAR_H, rx: 3, class: "bar-output" }),
      el("text", { x: (tokensX + inW + outW + 6).toFixed(1), y: mid, class: "value" }, formatTokens(total)),
      el("rect", { x: costX, y, width: costW.toFixed(1), height: BAR_H, rx: 3, class: "bar-cost" }),
      el("text", { x: (costX + costW + 6).toFixed(1), y: mid, class: "value" }, formatUsd(row.costUsdNanos)),
    );
    svg.append(g);
  });
  return svg;
}
