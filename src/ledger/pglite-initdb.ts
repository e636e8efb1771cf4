/**
 * Creates the embedded database cluster (PGlite's initdb) in the directory given as the first
 * argument, starts it once with the Postgres settings given after it, shuts it down cleanly and
 * exits. database.ts runs this as a child process on the first start with an empty directory,
 * so that what initdb leaves behind (see there) ends with the child instead of staying in the
 * service. Usage: `node pglite-initdb.js <dir> [setting=value ...]`.
 *
 * It imports packages only, never a module of this repository, so Node runs it as it is from
 * src/ (type stripping) as well as compiled in dist/.
 */
import { PGlite } from "@electric-sql/pglite";

const [dataDir, ...settings] = process.argv.slice(2);
if (dataDir === undefined || dataDir === "") {
  process.stderr.write("usage: pglite-initdb <data directory> [setting=value ...]\n");
  process.exit(2);
}
const pglite = new PGlite({
  dataDir,
  startParams: [...PGlite.defaultStartParams, ...settings.flatMap((setting) => ["-c", setting])],
});
await pglite.waitReady;
await pglite.close();
