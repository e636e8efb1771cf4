/** Reads the gateway's Prometheus text at /metrics: RPC outcomes by gRPC code, cache hits, flight joins. */

export interface GatewayCounters {
  /** rpc_server_call_duration_seconds_count for one method, by rpc_status_code. */
  calls: Record<string, number>;
  cacheHits: number;
  cacheMisses: number;
  flightJoins: number;
  /** rpc_server_active_calls for the method. */
  active: number;
}

function labels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

export async function readCounters(port: number, method: string): Promise<GatewayCounters> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const c: GatewayCounters = { calls: {}, cacheHits: 0, cacheMisses: 0, flightJoins: 0, active: 0 };
  for (const line of text.split("\n")) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, labelText, value] = m as unknown as [string, string, string, string];
    const l = labels(labelText);
    const v = Number(value);
    if (name === "rpc_server_call_duration_seconds_count" && l.rpc_method === method) {
      const code = l.rpc_status_code ?? "?";
      c.calls[code] = (c.calls[code] ?? 0) + v;
    } else if (name === "rpc_server_active_calls" && l.rpc_method === method) {
      c.active += v;
    } else if (name === "llm_gateway_cache_lookups_total") {
      if (l.result === "hit") c.cacheHits += v;
      else c.cacheMisses += v;
    } else if (name === "llm_gateway_single_flight_joins_total") {
      c.flightJoins += v;
    }
  }
  return c;
}

/** The counters once no call of the method is in flight any more (at most `timeoutMs` later). */
export async function readSettledCounters(port: number, method: string, timeoutMs = 5000): Promise<GatewayCounters> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await readCounters(port, method);
    if (c.active <= 0 || Date.now() > deadline) return c;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface CounterDelta {
  /** Calls that ended with a code other than OK or CANCELLED. */
  errors: number;
  /** CANCELLED: the load generator went away (calls in flight when a timed run ends). */
  cancelled: number;
  ok: number;
  /** Non-OK codes and their counts, e.g. "RESOURCE_EXHAUSTED:3". */
  codes: string;
  cacheHits: number;
  flightJoins: number;
}

export function delta(before: GatewayCounters, after: GatewayCounters): CounterDelta {
  let errors = 0;
  let cancelled = 0;
  let ok = 0;
  const codes: string[] = [];
  for (const [code, v] of Object.entries(after.calls)) {
    const d = v - (before.calls[code] ?? 0);
    if (d <= 0) continue;
    if (code === "OK") ok += d;
    else if (code === "CANCELLED") cancelled += d;
    else {
      errors += d;
      codes.push(`${code}:${d}`);
    }
  }
  return {
    errors,
    cancelled,
    ok,
    codes: codes.join(" "),
    cacheHits: after.cacheHits - before.cacheHits,
    flightJoins: after.flightJoins - before.flightJoins,
  };
}
