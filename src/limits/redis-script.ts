import { createHash } from "node:crypto";

/** The one thing the limiter needs from a Redis client (node-redis's `sendCommand` fits). */
export interface RedisCommandClient {
  sendCommand(args: readonly string[]): Promise<unknown>;
}

/**
 * A Lua script run by its SHA1 (EVALSHA), falling back to sending the source (EVAL) when the
 * server answers NOSCRIPT: a restarted or SCRIPT FLUSHed server has forgotten its scripts, and
 * that must never turn into an error. EVAL caches the script again for the next EVALSHA.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(client: RedisCommandClient, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(["EVALSHA", this.sha, ...tail]);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return client.sendCommand(["EVAL", this.source, ...tail]);
    }
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}
