/**
 * StreamGenerate: print tokens as they arrive, under a deadline for the whole stream (timeoutMs),
 * and stop cleanly on Ctrl-C: aborting the signal cancels the call, and the service cancels the
 * upstream request and records the call as cancelled.
 */
import { Code, ConnectError, Role } from "@llm-service/sdk";
import { llm } from "./client.js";
import { formatUsdNanos } from "./format.js";

const model = process.argv[2] ?? "sim/lorem";
const prompt = process.argv[3] ?? "Tell me about API gateways.";

const controller = new AbortController();
process.once("SIGINT", () => controller.abort());

try {
  const stream = llm.streamGenerate(
    { model, messages: [{ role: Role.USER, content: prompt }] },
    { signal: controller.signal, timeoutMs: 20_000 },
  );
  for await (const { event } of stream) {
    switch (event.case) {
      case "started":
        console.error(`[${event.value.model} via ${event.value.provider}, request ${event.value.id}]`);
        break;
      case "delta":
        process.stdout.write(event.value.text);
        break;
      case "completed":
        process.stdout.write("\n");
        console.error(
          `[done: ${event.value.usage?.outputTokens} tokens, ${formatUsdNanos(event.value.costUsdNanos)}, ` +
            `${event.value.attempts} attempt(s)]`,
        );
        break;
    }
  }
} catch (err) {
  const e = ConnectError.from(err);
  if (e.code === Code.Canceled) {
    console.error("\n[cancelled]");
    process.exitCode = 130;
  } else if (e.code === Code.DeadlineExceeded) {
    console.error("\n[deadline exceeded]");
    process.exitCode = 1;
  } else {
    throw e;
  }
}
