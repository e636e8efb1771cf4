/**
 * Handling RESOURCE_EXHAUSTED: read the ErrorInfo (why) and the RetryInfo (when to come back) from
 * the error's details, wait that long, and try again a bounded number of times.
 *
 * Against the built-in sim provider, the request's metadata makes the upstream answer "429, retry
 * after 1.5 s" every time: the service retries within the call's deadline, then gives up with
 * RESOURCE_EXHAUSTED / PROVIDER_RATE_LIMITED and a RetryInfo. (A key created with `--rpm 1` gives
 * RESOURCE_EXHAUSTED / RATE_LIMITED with RetryInfo and QuotaFailure on its second call a minute.)
 */
import {
  Code,
  codeName,
  ConnectError,
  ErrorInfoSchema,
  retryDelayMsOf,
  Role,
  type GenerateResponse,
  type LlmClient,
} from "@llm-service/sdk";
import { llm } from "./client.js";

/** What generate() accepts: a GenerateRequest as a plain object. */
type GenerateInput = Parameters<LlmClient["generate"]>[0];

const MAX_ATTEMPTS = 2;
/** Never wait longer than this, whatever the service says. */
const MAX_WAIT_MS = 10_000;

async function generateWithRetry(client: LlmClient, request: GenerateInput): Promise<GenerateResponse> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.generate(request, { timeoutMs: 2_000 });
    } catch (err) {
      const e = ConnectError.from(err);
      // The general way to read any detail; retryDelayMsOf(e) and errorInfoOf(e) are shortcuts.
      const [info] = e.findDetails(ErrorInfoSchema);
      const delayMs = retryDelayMsOf(e);
      console.error(
        `attempt ${attempt}: ${codeName(e.code)} ${info?.reason ?? "(no ErrorInfo)"} ` +
          `request ${info?.metadata["request_id"] ?? "?"}, retry after ${delayMs ?? "?"} ms`,
      );
      const retryable = e.code === Code.ResourceExhausted || e.code === Code.Unavailable;
      if (!retryable || delayMs === undefined || attempt >= MAX_ATTEMPTS) throw e;
      await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, MAX_WAIT_MS)));
    }
  }
}

const request: GenerateInput = {
  model: "sim/echo",
  messages: [{ role: Role.USER, content: "Will this be rate-limited?" }],
  metadata: { "sim-fail": "PROVIDER_RATE_LIMITED", "sim-retry-after-ms": "1500" },
};

try {
  const res = await generateWithRetry(llm, request);
  console.log(res.text);
} catch (err) {
  const e = ConnectError.from(err);
  console.log(`gave up after ${MAX_ATTEMPTS} attempts: ${codeName(e.code)} (retry after ${retryDelayMsOf(e)} ms)`);
  process.exitCode = 1;
}
