import { readFile, rm, writeFile } from "node:fs/promises";

/**
 * Lock files held by this process. A lock file holds a pid, which cannot tell this process from
 * an earlier one that had the same pid (pid 1 in a restarted container, say): this set can.
 */
const held = new Set<string>();

/**
 * Takes a lock file holding this process's pid, so one process at a time owns a resource on
 * disk. A lock left by a process that is gone (or by an earlier process with our pid) is taken
 * over. Returns the release function. `inUse` words the error when another live process holds it.
 */
export async function acquirePidLock(file: string, inUse: (owner: number) => string): Promise<() => Promise<void>> {
  if (held.has(file)) throw new Error(inUse(process.pid));
  for (let tries = 0; tries < 2; tries++) {
    try {
      await writeFile(file, String(process.pid), { flag: "wx" });
      held.add(file);
      return async () => {
        held.delete(file);
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) throw new Error(inUse(owner));
    await rm(file, { force: true }); // left by a process that is gone
  }
  throw new Error(`cannot take the lock ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
