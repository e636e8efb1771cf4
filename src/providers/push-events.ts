import type { DeltaSink, ProviderDone, ProviderEvent } from "./provider.js";

/**
 * Pushes an adapter's pulled events (a vendor SDK's own stream iterator) into a sink: for the
 * adapters that still read through their SDK's iterator. Stops the iterator when it throws.
 */
export async function pushEvents(events: AsyncIterable<ProviderEvent>, sink: DeltaSink): Promise<ProviderDone> {
  let done: ProviderDone | undefined;
  for await (const event of events) {
    if (event.type === "done") done = { finishReason: event.finishReason, usage: event.usage };
    else if (!sink.delta(event.text)) await sink.drained();
  }
  if (done === undefined) throw new Error("the provider's stream ended without a done event");
  return done;
}
