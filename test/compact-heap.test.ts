import v8 from "node:v8";
import { describe, expect, it } from "vitest";
import { compactHeap } from "../src/compact-heap.js";

function youngGenerationBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.physical_space_size ?? 0;
}

describe("compactHeap", () => {
  it("gives back the young generation that a burst of short-lived garbage grew", () => {
    let sink = 0;
    for (let i = 0; i < 2_000_000; i++) sink += { i, s: `item ${i}` }.s.length;
    expect(sink).toBeGreaterThan(0);
    const grown = youngGenerationBytes();
    expect(grown).toBeGreaterThan(4 * 1024 * 1024);

    expect(compactHeap()).toBeGreaterThanOrEqual(0);
    expect(youngGenerationBytes()).toBeLessThan(grown / 4);
  });

  it("leaves no gc global behind", () => {
    const before = typeof (globalThis as { gc?: unknown }).gc;
    compactHeap();
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe(before);
  });
});
