/**
 * Spans for the usage ledger's writes. The ledger writes in the background, in batches that mix
 * many requests, so each INSERT is a root span of its own ("INSERT generations", database client
 * conventions) rather than a child of any one call.
 *
 * It is a Kysely plugin on the ledger's database handle (app.ts), so the ledger itself stays
 * unaware of tracing. Kysely tells a plugin about a query and its result, not its failure; the
 * ledger runs one write at a time, so a write still open when the next starts, or when the ledger
 * reports an error (`failOpen`), has failed.
 */
import { SpanKind, type Span } from "@opentelemetry/api";
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryId, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { generationsInsertRows } from "../ledger/generations-insert.js";
import type { Tracing } from "./tracing.js";

export interface LedgerTracing extends KyselyPlugin {
  /** Ends the write(s) still open as failed: the ledger reported `err`. */
  failOpen(err: unknown): void;
}

function insertTarget(node: RootOperationNode): { table: string; rows: number | undefined } | undefined {
  if (node.kind !== "InsertQueryNode") return undefined;
  const table = node.into?.table.identifier.name ?? "";
  const values = node.values;
  // The ledger writes a batch as one INSERT … SELECT FROM unnest(arrays); other inserts are VALUES lists.
  const rows =
    generationsInsertRows(node) ?? (values?.kind === "ValuesNode" ? (values as unknown as { values: readonly unknown[] }).values.length : undefined);
  return { table, rows };
}

export function ledgerTracing(tracing: Tracing, options: { dbSystem: string; table?: string }): LedgerTracing {
  const table = options.table ?? "generations";
  const open = new Map<QueryId, Span>();
  const failAll = (err: unknown) => {
    for (const span of open.values()) tracing.end(span, err);
    open.clear();
  };
  return {
    transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
      if (!tracing.exporting) return node;
      const insert = insertTarget(node);
      if (insert === undefined || insert.table !== table) return node;
      // Writes are serialised: one still open never got its result.
      if (open.size > 0) failAll(new Error("the ledger write failed"));
      const span = tracing.startRootSpan(
        `INSERT ${table}`,
        {
          "db.system.name": options.dbSystem,
          "db.operation.name": "INSERT",
          "db.collection.name": table,
          ...(insert.rows !== undefined && insert.rows > 1 ? { "db.operation.batch.size": insert.rows } : {}),
          "llm.ledger.rows": insert.rows ?? 0,
        },
        SpanKind.CLIENT,
      );
      open.set(queryId, span);
      return node;
    },

    async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      const span = open.get(queryId);
      if (span !== undefined) {
        open.delete(queryId);
        if (result.numAffectedRows !== undefined) span.setAttribute("llm.ledger.rows_inserted", Number(result.numAffectedRows));
        span.end();
      }
      return result;
    },

    failOpen: failAll,
  };
}
