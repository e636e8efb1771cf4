import { describe, expect, it } from "vitest";
import { sseEvents, type SseEvent } from "../../src/providers/sse.js";

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
  for await (const e of sseEvents(stream)) out.push(e);
  return out;
}

describe("sseEvents", () => {
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
    for await (const e of sseEvents(stream)) {
      expect(e.data).toBe("1");
      break;
    }
    expect(stream.locked).toBe(false);
  });
});
