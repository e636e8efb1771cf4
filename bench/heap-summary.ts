/**
 * Counts and self sizes by constructor in a V8 heap snapshot (.heapsnapshot JSON), and the
 * difference between two such summaries: what grew between two points of a run.
 * `node bench/heap-summary.ts <a.heapsnapshot> <b.heapsnapshot>` prints the 40 largest growths.
 */
import { readFileSync } from "node:fs";
import { fmt, table } from "./stats.ts";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface Group {
  count: number;
  bytes: number;
}

/** Objects grouped by "constructor" (objects, closures) or "(type) name" for the rest. */
export function summarizeSnapshot(file: string): Map<string, Group> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const groups = new Map<string, Group>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    const name = s.strings[s.nodes[i + nameAt]!]!;
    const key =
      type === "object" || type === "closure" || type === "native"
        ? `${name.slice(0, 60)}${type === "closure" ? "()" : ""}`
        : type === "string" || type === "concatenated string" || type === "sliced string"
          ? "(string)"
          : type === "code"
            ? "(code)"
            : `(${type}) ${name.slice(0, 40)}`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += s.nodes[i + sizeAt]!;
    groups.set(key, g);
  }
  return groups;
}

/** Rows of the groups that grew most from `a` to `b`, by bytes, then count. */
export function growthTable(a: Map<string, Group>, b: Map<string, Group>, top = 40): string {
  const rows = [...b.entries()]
    .map(([key, g]) => {
      const before = a.get(key) ?? { count: 0, bytes: 0 };
      return { key, dCount: g.count - before.count, dBytes: g.bytes - before.bytes, count: g.count, bytes: g.bytes };
    })
    .filter((r) => r.dCount !== 0 || r.dBytes !== 0)
    .sort((x, y) => y.dBytes - x.dBytes || y.dCount - x.dCount)
    .slice(0, top);
  return table(
    ["constructor", "Δ count", "Δ KiB", "count", "KiB"],
    rows.map((r) => [r.key, String(r.dCount), fmt(r.dBytes / 1024, 1), String(r.count), fmt(r.bytes / 1024, 1)]),
  );
}

if (import.meta.main) {
  const [a, b] = process.argv.slice(2);
  if (a === undefined || b === undefined) throw new Error("usage: node bench/heap-summary.ts <a.heapsnapshot> <b.heapsnapshot>");
  process.stdout.write(`${growthTable(summarizeSnapshot(a), summarizeSnapshot(b))}\n`);
}
