import { describe, expect, it } from "vitest";
import {
  isModelAllowed,
  matchesModelPattern,
  MAX_MODEL_PATTERN_LENGTH,
  MAX_MODEL_PATTERNS,
  modelPatternsProblem,
  normalizeModelPatterns,
} from "../../src/core/model-access.js";

describe("matchesModelPattern", () => {
  it.each([
    ["gpt-4o", "gpt-4o", true],
    ["gpt-4o", "gpt-4o-mini", false],
    ["gpt-4o", "gpt-4", false],
    ["gpt-4o*", "gpt-4o", true],
    ["gpt-4o*", "gpt-4o-mini", true],
    ["gpt-4o*", "gpt-4", false],
    ["sim/*", "sim/small", true],
    ["sim/*", "sim/", true],
    ["sim/*", "simulator/small", false],
    ["*", "anything/at/all", true],
    ["*", "", true],
    ["*/small", "sim/small", true],
    ["*/small", "a/b/small", true],
    ["*/small", "sim/small-2", false],
    ["claude-*-sonnet*", "claude-3-5-sonnet-latest", true],
    ["claude-*-sonnet*", "claude-3-opus", false],
    ["a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false],
    ["a*b", "ab", true],
    ["**", "x", true],
  ])("%j against %j is %s", (pattern, name, expected) => {
    expect(matchesModelPattern(pattern, name)).toBe(expected);
  });

  it("treats every character but * literally: . ? [ ] + ( ) and \\ are not special", () => {
    expect(matchesModelPattern("gpt-4.1", "gpt-4.1")).toBe(true);
    expect(matchesModelPattern("gpt-4.1", "gpt-4x1")).toBe(false);
    expect(matchesModelPattern("gpt-4?", "gpt-4o")).toBe(false);
    expect(matchesModelPattern("gpt-4?", "gpt-4?")).toBe(true);
    expect(matchesModelPattern("m[12]", "m1")).toBe(false);
    expect(matchesModelPattern("m[12]", "m[12]")).toBe(true);
    expect(matchesModelPattern("a+(b)\\", "a+(b)\\")).toBe(true);
    expect(matchesModelPattern("a+", "aa")).toBe(false);
  });

  it("is case-sensitive", () => {
    expect(matchesModelPattern("GPT-4o*", "gpt-4o")).toBe(false);
  });

  it("stays fast on a pattern with many stars against a long name that does not match", () => {
    const pattern = `${"a*".repeat(60)}b`;
    const name = "a".repeat(10_000);
    const started = performance.now();
    expect(matchesModelPattern(pattern, name)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("isModelAllowed", () => {
  it("allows every model when the list is empty or absent", () => {
    expect(isModelAllowed(undefined, "gpt-4o")).toBe(true);
    expect(isModelAllowed([], "gpt-4o")).toBe(true);
  });

  it("allows a model that matches any pattern and refuses one that matches none", () => {
    const allowed = ["sim/*", "gpt-4o*", "claude-3-haiku"];
    expect(isModelAllowed(allowed, "sim/large")).toBe(true);
    expect(isModelAllowed(allowed, "gpt-4o-mini")).toBe(true);
    expect(isModelAllowed(allowed, "claude-3-haiku")).toBe(true);
    expect(isModelAllowed(allowed, "claude-3-opus")).toBe(false);
    expect(isModelAllowed(allowed, "gpt-4")).toBe(false);
  });

  it("allows a model when one of its aliases matches", () => {
    expect(isModelAllowed(["fast"], "gpt-4o-mini", ["fast", "cheap"])).toBe(true);
    expect(isModelAllowed(["fast"], "gpt-4o-mini", ["cheap"])).toBe(false);
    expect(isModelAllowed(["fast"], "gpt-4o-mini")).toBe(false);
  });
});

describe("model pattern validation", () => {
  it("trims and drops duplicates, keeping the first order", () => {
    expect(normalizeModelPatterns([" gpt-4o* ", "sim/*", "gpt-4o*"])).toEqual(["gpt-4o*", "sim/*"]);
  });

  it("accepts up to the maximum count and length", () => {
    const patterns = Array.from({ length: MAX_MODEL_PATTERNS }, (_, i) => `m${i}`.padEnd(MAX_MODEL_PATTERN_LENGTH, "x"));
    expect(modelPatternsProblem(patterns)).toBeUndefined();
  });

  it.each([
    [[""], /empty/],
    [["x".repeat(MAX_MODEL_PATTERN_LENGTH + 1)], /at most 128 characters/],
    [Array.from({ length: MAX_MODEL_PATTERNS + 1 }, (_, i) => `m${i}`), /at most 64 model patterns/],
    [["gpt 4o"], /whitespace or control/],
    [["gpt\u00004o"], /whitespace or control/],
    [[42], /string/],
  ])("refuses %j", (patterns, problem) => {
    expect(modelPatternsProblem(patterns)).toMatch(problem);
  });
});
