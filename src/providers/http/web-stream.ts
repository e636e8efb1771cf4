/** A Node Readable as a web ReadableStream, for response bodies handed to the vendor SDKs. */
import type { Readable } from "node:stream";

/**
 * A Node Readable as a web ReadableStream: each chunk as it comes, the Readable paused while the
 * stream's queue is full, its error as the stream's, a close before the end as a TypeError (as
 * fetch reports a cut body), and a cancel destroying it. `Readable.toWeb` does the same, but
 * every body it adapted stayed reachable for V8's young-generation collections until the next
 * full GC, with what the openai SDK hangs on the response: copied and promoted, it lengthened
 * every scavenge pause. Through the SDK, 9.0 KiB per call survived with it and 4.6 with this
 * (`npm run bench:gc`, bench/README.md "Young-generation survival").
 */
export function webStream(body: Readable): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      body.on("data", (chunk: Buffer) => {
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) body.pause();
      });
      body.once("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      body.once("error", (err) => {
        if (done) return;
        done = true;
        controller.error(err);
      });
      body.once("close", () => {
        if (done) return;
        done = true;
        controller.error(new TypeError("terminated", { cause: new Error("the connection closed before the body ended") }));
      });
      body.pause();
    },
    pull() {
      body.resume();
    },
    cancel(reason) {
      done = true;
      body.destroy(reason instanceof Error ? reason : undefined);
    },
  });
}
