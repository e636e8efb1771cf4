export interface RetryBudgetOptions {
  /** The bucket's size; it starts full. */
  maxTokens: number;
  /** What one successful attempt puts back. */
  tokenRatio: number;
}

/**
 * Retry throttling for one deployment, in the style of gRFC A6: a bucket that starts with
 * `maxTokens`; every failed attempt takes 1 out, every successful one puts `tokenRatio` back (never
 * above `maxTokens`, never below 0). Retries are allowed only while more than half the bucket is
 * left. So while most attempts fail, each call gets its first attempt and nothing more, and an
 * outage is not multiplied by maxAttempts; a few successes refill the bucket and retries resume.
 */
export class RetryBudget {
  // Kept in thousandths of a token (as gRFC A6 does), so adding 0.1 ten times makes exactly 1.
  private milli: number;
  private readonly maxMilli: number;
  private readonly ratioMilli: number;

  constructor(options: RetryBudgetOptions) {
    this.maxMilli = Math.round(options.maxTokens * 1000);
    this.ratioMilli = Math.round(options.tokenRatio * 1000);
    this.milli = this.maxMilli;
  }

  /** Whether a retry (an attempt after the first) may start now. */
  get allowsRetry(): boolean {
    return this.milli * 2 > this.maxMilli;
  }

  /** Tokens left (for tests and diagnostics). */
  get remaining(): number {
    return this.milli / 1000;
  }

  onSuccess(): void {
    this.milli = Math.min(this.maxMilli, this.milli + this.ratioMilli);
  }

  onFailure(): void {
    this.milli = Math.max(0, this.milli - 1000);
  }
}
