/**
 * Which models a key may use: a list of model ids or glob patterns. `*` matches any run of
 * characters, "/" included ("sim/*", "gpt-4o*", "*"); every other character matches itself,
 * case-sensitively. An empty or absent list allows every model.
 */

/** Most patterns one key may carry. */
export const MAX_MODEL_PATTERNS = 64;
/** Longest pattern, in characters. */
export const MAX_MODEL_PATTERN_LENGTH = 128;

/**
 * Whether `pattern` matches all of `name`. Iterative, backtracking only to the last `*`, so a
 * pattern like "*a*a*a*b" costs at most length(pattern) × length(name) steps, never exponential.
 */
export function matchesModelPattern(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1; // index in pattern of the last `*` seen
  let resume = 0; // index in name where that `*` currently stops matching
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      // Let the last `*` swallow one more character and try again from there.
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/**
 * Whether a key whose allowed list is `allowed` may use the model `modelId`, also known by
 * `aliases` (a model is allowed when its id or any of its aliases matches a pattern).
 */
export function isModelAllowed(
  allowed: readonly string[] | undefined,
  modelId: string,
  aliases: readonly string[] = [],
): boolean {
  if (allowed === undefined || allowed.length === 0) return true;
  return allowed.some(
    (pattern) => matchesModelPattern(pattern, modelId) || aliases.some((alias) => matchesModelPattern(pattern, alias)),
  );
}

/** Patterns trimmed, in their first order, duplicates dropped. Check them with `modelPatternsProblem`. */
export function normalizeModelPatterns(patterns: readonly string[]): string[] {
  return [...new Set(patterns.map((p) => p.trim()))];
}

/** What is wrong with a list of (normalised) patterns, or undefined when it is acceptable. */
export function modelPatternsProblem(patterns: readonly unknown[]): string | undefined {
  if (patterns.length > MAX_MODEL_PATTERNS) {
    return `at most ${MAX_MODEL_PATTERNS} model patterns are allowed, got ${patterns.length}`;
  }
  for (const pattern of patterns) {
    if (typeof pattern !== "string") return "a model pattern must be a string";
    if (pattern === "") return "a model pattern must not be empty";
    if (pattern.length > MAX_MODEL_PATTERN_LENGTH) {
      return `a model pattern must be at most ${MAX_MODEL_PATTERN_LENGTH} characters: ${JSON.stringify(pattern.slice(0, 40))}…`;
    }
    if (/[\s\p{Cc}]/u.test(pattern)) {
      return `a model pattern must not contain whitespace or control characters: ${JSON.stringify(pattern)}`;
    }
  }
  return undefined;
}
