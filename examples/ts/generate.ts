/** Generate: one complete answer, with token usage, cost and the request id. */
import { Role } from "@llm-service/sdk";
import { llm } from "./client.js";
import { formatUsdNanos } from "./format.js";

const model = process.argv[2] ?? "sim/echo";
const prompt = process.argv[3] ?? "Hello, gateway!";

const res = await llm.generate({
  model,
  messages: [{ role: Role.USER, content: prompt }],
  maxOutputTokens: 256,
});
console.log(res.text);
console.error(
  `model ${res.model} via ${res.provider}, ${res.usage?.inputTokens} in + ${res.usage?.outputTokens} out tokens, ` +
    `${formatUsdNanos(res.costUsdNanos)}, request ${res.id}`,
);
