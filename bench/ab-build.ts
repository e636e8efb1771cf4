/**
 * One build of the gateway for a side-by-side run (ab-cpu.ts, ab-stream.ts): `<root>/dist/src/main.js`
 * with the embedded defaults in its own DATA_DIR, on the gateways' CPU, and the development key it prints.
 * It gets the node flags of that root's `npm start` through NODE_OPTIONS, ahead of any NODE_OPTIONS in
 * `env`, so a flag given there wins (V8 takes the last of two).
 */
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { freePort, log, portOpen, type Procs, waitUntil } from "./procs.ts";
import { GATEWAY_CPU, NODE, startFlags } from "./setup.ts";

export interface Build {
  name: string;
  pid: number | undefined;
  port: number;
  key: string;
}

/** Starts build `n` (A, B, …) of `root` and waits until it listens. `nodeArgs` go before the script (e.g. --cpu-prof); `cpu` pins it elsewhere than the gateways' CPU. */
export async function startBuild(
  procs: Procs,
  work: string,
  root: string,
  n: number,
  options: { env?: Record<string, string>; nodeArgs?: string[]; cpu?: number } = {},
): Promise<Build> {
  const name = `${String.fromCharCode(65 + n)} ${basename(root)}`;
  const port = await freePort();
  const stdoutFile = join(work, `${n}.stdout.log`);
  const stderrFile = join(work, `${n}.stderr.log`);
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? tmpdir(),
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: join(work, `data-${n}`),
    ...options.env,
    NODE_OPTIONS: [...startFlags(root), options.env?.["NODE_OPTIONS"] ?? ""].join(" ").trim(),
  };
  const child = procs.start(name, NODE, [...(options.nodeArgs ?? []), join(root, "dist/src/main.js")], { cpu: options.cpu ?? GATEWAY_CPU, env, stdoutFile, stderrFile });
  await waitUntil(`${name} to listen`, 180_000, async () => existsSync(stdoutFile) && readFileSync(stdoutFile, "utf8").includes('"message":"listening"') && (await portOpen(port)));
  const key = /export LLM_API_KEY=(llm_\S+)/.exec(readFileSync(stderrFile, "utf8"))?.[1];
  if (key === undefined) throw new Error(`${name} printed no development key`);
  log(`${name} listening on ${port}`);
  return { name, pid: child.pid, port, key };
}
