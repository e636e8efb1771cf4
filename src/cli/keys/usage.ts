/** The keys CLI's usage text, and the error for arguments it does not take. */

export const KEYS_USAGE = `usage: npm run keys -- <command>

commands:
  create --name NAME [--tenant TENANT] [--role admin|user] [--expires-in-days N]
         [--models LIST] [LIMITS]
                         create a key and print its secret (once)
  update <id|prefix> [--name NAME] [--models LIST] [LIMITS] [--clear FIELDS]
         [--enable | --disable] [--expires-in-days N | --no-expiry]
                         change a key; what is not given stays as it is
  list                   list keys with their models and limits (never their secrets)
  revoke <id|prefix>     revoke a key for good (--disable can be undone)
  tenant <name> [LIMITS] [--clear FIELDS]
                         set a tenant's limits (applied on top of its keys' own) and print them
  tenants                list the tenants that have limits

LIMITS (absent: no limit):
  --rpm N                requests per minute
  --tpm N                tokens (input + output) per minute
  --concurrency N        requests in flight at once
  --budget-day USD       spend per UTC day, in dollars (e.g. 12.50; up to 9 decimals)
  --budget-month USD     spend per UTC month, in dollars
  --models LIST          comma-separated model ids or patterns, * matching anything
                         (e.g. gpt-4o*,sim/*); absent: every model
  --clear FIELDS         comma-separated limits to remove: rpm,tpm,concurrency,budget-day,
                         budget-month; on update also models (every model allowed again)

Changes made here reach a running server within its key cache time (30 s).

environment: DATABASE_URL (Postgres) or DATA_DIR (embedded database, default ./.data)`;

/** Bad command-line arguments: the message and the usage go to stderr, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
