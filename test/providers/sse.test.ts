import { describe, expect, it } from "vitest";
import { readSse, SseDecoder, type SseEvent } from "../../src/providers/sse.js";

function body(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(encoder.encode(c));
      controller.close();
    },
  });
}

async function all(stream: ReadableStream<Uint8Array>): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  await readSse(stream, (e) => out.push(e));
  return out;
}

describe("readSse", () => {
  it("reads data events, event names, comments and multi-line data", async () => {
    const events = await all(body(": keep-alive\n\n", "data: {\"a\":1}\n\n", "event: error\ndata: one\ndata:two\n\n", "data: [DONE]\n\n"));
    expect(events).toEqual([
      { event: null, data: '{"a":1}' },
      { event: "error", data: "one\ntwo" },
      { event: null, data: "[DONE]" },
    ]);
  });

  it("joins events split anywhere across reads, multi-byte characters included", async () => {
    const text = "data: héllo wörld ✓\n\ndata: second\n\n";
    const bytes = new TextEncoder().encode(text);
    const split = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.subarray(i, i + 3));
        controller.close();
      },
    });
    expect(await all(split)).toEqual([
      { event: null, data: "héllo wörld ✓" },
      { event: null, data: "second" },
    ]);
  });

  it("takes CRLF and CR line ends, a CRLF split between two reads included", async () => {
    expect(await all(body("data: a\r\n\r\ndata: b\r", "\n\r", "\ndata: c\r\rdata: d\n\n"))).toEqual([
      { event: null, data: "a" },
      { event: null, data: "b" },
      { event: null, data: "c" },
      { event: null, data: "d" },
    ]);
  });

  it("keeps a last event that lacks its blank line, and yields nothing for an empty body", async () => {
    expect(await all(body("data: x\n\ndata: tail"))).toEqual([
      { event: null, data: "x" },
      { event: null, data: "tail" },
    ]);
    expect(await all(body())).toEqual([]);
  });

  it("releases the body when the consumer stops early", async () => {
    const stream = body("data: 1\n\ndata: 2\n\n");
    const seen: string[] = [];
    const stop = new Error("enough");
    await expect(
      readSse(stream, (e) => {
        seen.push(e.data);
        throw stop;
      }),
    ).rejects.toBe(stop);
    expect(seen).toEqual(["1"]);
    expect(stream.locked).toBe(false);
  });

  it("holds the next read back while the consumer is paused", async () => {
    const encoder = new TextEncoder();
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          if (pulls > 3) controller.close();
          else controller.enqueue(encoder.encode(`data: ${pulls}\n\n`));
        },
      },
      { highWaterMark: 0 },
    );
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seen: string[] = [];
    const reading = readSse(
      stream,
      (e) => seen.push(e.data),
      () => (seen.length === 1 ? gate : undefined),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual(["1"]);
    expect(pulls).toBe(1);
    release();
    await reading;
    expect(seen).toEqual(["1", "2", "3"]);
  });
});

describe("SseDecoder", () => {
  it("dispatches events synchronously, as their bytes arrive", () => {
    const seen: SseEvent[] = [];
    const decoder = new SseDecoder((e) => seen.push(e));
    decoder.push(new TextEncoder().encode("data: a\n\ndata: b"));
    expect(seen).toEqual([{ event: null, data: "a" }]);
    decoder.push(new TextEncoder().encode("\n\n"));
    expect(seen).toEqual([
      { event: null, data: "a" },
      { event: null, data: "b" },
    ]);
  });
});
