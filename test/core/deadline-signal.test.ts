import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deadlineSignal } from "../../src/core/deadline-signal.js";

describe("deadlineSignal", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires at the deadline with the expired reason, not a millisecond before", () => {
    const deadline = deadlineSignal({ timeoutMs: 100, expired: () => "expired" });
    vi.advanceTimersByTime(99);
    expect(deadline.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe("expired");
    deadline.dispose();
  });

  it("fires at once when the deadline has already passed", () => {
    expect(deadlineSignal({ timeoutMs: 0, expired: () => "expired" }).signal.reason).toBe("expired");
    expect(deadlineSignal({ timeoutMs: -5, expired: () => "expired" }).signal.reason).toBe("expired");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("follows the parent with the parent's reason, or the one followReason makes of it", () => {
    const parent = new AbortController();
    const kept = deadlineSignal({ parent: parent.signal, timeoutMs: 100, expired: () => "expired" });
    const mapped = deadlineSignal({ parent: parent.signal, timeoutMs: 100, expired: () => "expired", followReason: (r) => `mapped ${String(r)}` });
    parent.abort("gone");
    expect(kept.signal.reason).toBe("gone");
    expect(mapped.signal.reason).toBe("mapped gone");
    vi.advanceTimersByTime(200);
    expect(kept.signal.reason).toBe("gone"); // the deadline passing later changes nothing
    kept.dispose();
    mapped.dispose();
  });

  it("fires at once when the parent has already fired", () => {
    const parent = new AbortController();
    parent.abort("before");
    const deadline = deadlineSignal({ parent: parent.signal, expired: () => "expired" });
    expect(deadline.signal.reason).toBe("before");
  });

  it("has no timer without a timeout: only the parent makes it fire", () => {
    const parent = new AbortController();
    const deadline = deadlineSignal({ parent: parent.signal, expired: () => "expired" });
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000_000);
    expect(deadline.signal.aborted).toBe(false);
    deadline.dispose();
  });

  it("dispose stops the timer and stops following the parent", () => {
    const parent = new AbortController();
    const deadline = deadlineSignal({ parent: parent.signal, timeoutMs: 100, expired: () => "expired" });
    deadline.dispose();
    expect(vi.getTimerCount()).toBe(0);
    parent.abort("gone");
    vi.advanceTimersByTime(200);
    expect(deadline.signal.aborted).toBe(false);
  });

  it("abort ends it early with the owner's reason, once", () => {
    const deadline = deadlineSignal({ timeoutMs: 100, expired: () => "expired" });
    deadline.abort("closed");
    deadline.abort("again");
    expect(deadline.signal.reason).toBe("closed");
    deadline.dispose();
  });
});
