/** The error a promise rejects with; fails the test when it resolves instead. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Iterates a stream to its end, handing each item to `each`. */
export async function drain<T>(stream: AsyncIterable<T>, each: (item: T) => void = () => undefined): Promise<void> {
  for await (const item of stream) each(item);
}
