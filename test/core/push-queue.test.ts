import { describe, expect, it } from "vitest";
import { PushQueue } from "../../src/core/push-queue.js";

describe("PushQueue", () => {
  it("hands values over in order, whether pushed before or after the consumer waits, then ends", async () => {
    const q = new PushQueue<number>();
    q.push(1);
    q.push(2);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const v of q) seen.push(v);
    })();
    await Promise.resolve();
    q.push(3);
    q.end();
    q.push(4);
    await reading;
    expect(seen).toEqual([1, 2, 3]);
  });

  it("delivers the values pushed before a failure, then the error", async () => {
    const q = new PushQueue<string>();
    q.push("a");
    const boom = new Error("boom");
    q.fail(boom);
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const v of q) seen.push(v);
      })(),
    ).rejects.toBe(boom);
    expect(seen).toEqual(["a"]);
  });

  it("rejects a consumer already waiting when the producer fails", async () => {
    const q = new PushQueue<string>();
    const waiting = q.next();
    const boom = new Error("boom");
    q.fail(boom);
    await expect(waiting).rejects.toBe(boom);
    await expect(q.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it("reports backpressure at highWater and releases drained() once the consumer takes values", async () => {
    const q = new PushQueue<number>({ highWater: 2 });
    expect(q.push(1)).toBe(true);
    expect(q.push(2)).toBe(false);
    let drained = false;
    const wait = q.drained().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    await q.next();
    await wait;
    expect(drained).toBe(true);
  });

  it("calls onReturn once when the consumer leaves early, and drops later pushes", async () => {
    let returns = 0;
    const q = new PushQueue<number>({ onReturn: () => returns++ });
    q.push(1);
    q.push(2);
    for await (const v of q) {
      expect(v).toBe(1);
      break;
    }
    await q.return();
    expect(returns).toBe(1);
    expect(q.returned).toBe(true);
    expect(q.push(3)).toBe(true);
    await expect(q.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it("does not call onReturn when the consumer leaves after the end", async () => {
    let returns = 0;
    const q = new PushQueue<number>({ onReturn: () => returns++ });
    q.end();
    await q.return();
    expect(returns).toBe(0);
  });
});

describe("PushQueue.whenSettled", () => {
  it("reports the end once the consumer takes it, an error once it is thrown, an early exit as abandoned", async () => {
    const ended = new PushQueue<number>();
    const outcomes: unknown[] = [];
    ended.whenSettled((o) => outcomes.push(o));
    ended.push(1);
    ended.end();
    expect(outcomes).toEqual([]);
    for await (const _ of ended) void _;
    expect(outcomes).toEqual([{}]);

    const failed = new PushQueue<number>();
    const boom = new Error("boom");
    failed.whenSettled((o) => outcomes.push(o));
    const waiting = failed.next();
    failed.fail(boom);
    await expect(waiting).rejects.toBe(boom);
    expect(outcomes[1]).toEqual({ error: boom });

    const left = new PushQueue<number>();
    left.whenSettled((o) => outcomes.push(o));
    left.push(1);
    await left.next();
    await left.return();
    await left.return();
    expect(outcomes[2]).toEqual({ abandoned: true });
    expect(outcomes).toHaveLength(3);
    left.whenSettled((o) => outcomes.push(o));
    expect(outcomes[3]).toEqual({ abandoned: true });
  });
});
