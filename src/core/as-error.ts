/** What was thrown, as an Error: itself when it is one, else an Error with its text. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
