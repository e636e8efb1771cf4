/** One memory-reducing garbage collection, for the moment start-up is over. */
import v8 from "node:v8";
import vm from "node:vm";

type GcFunction = (options: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/**
 * Start-up allocates a lot that dies at once (module sources, migrations, the 9 MB PGlite WASM
 * bytes), and V8 grows its young generation to its 32 MB cap while it does. An idle service
 * allocates nothing, so no collection ever comes to give that back: the process idled with
 * ~27 MB of empty young-generation pages and dead buffers resident. A collection of the kind
 * V8 runs under memory pressure ("last resort") shrinks the young generation and releases
 * them; under load V8 grows it again as it always does, so throughput is unchanged.
 *
 * Node has no API for it: the V8 `gc` function is taken from a fresh context with --expose-gc
 * switched on for just that moment, so no `gc` global appears anywhere else.
 * Returns how long the collection took, in ms, or undefined when no `gc` could be had.
 */
export function compactHeap(): number | undefined {
  const gc = v8GcFunction();
  if (!gc) return undefined;
  const started = performance.now();
  gc({ type: "major", execution: "sync", flavor: "last-resort" });
  return performance.now() - started;
}

function v8GcFunction(): GcFunction | undefined {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === "function") return global as GcFunction;
  v8.setFlagsFromString("--expose-gc");
  try {
    const gc: unknown = vm.runInNewContext("gc");
    return typeof gc === "function" ? (gc as GcFunction) : undefined;
  } finally {
    v8.setFlagsFromString("--no-expose-gc");
  }
}
