/** ListModels: the models this key may use, with prices and deployments. */
import { CircuitState, formatUsdNanos } from "./format.js";
import { llm } from "./client.js";

const { models } = await llm.listModels({});
for (const m of models) {
  const aliases = m.aliases.length > 0 ? ` (${m.aliases.join(", ")})` : "";
  const deployments = m.deployments.map((d) => `${d.provider}:${d.upstreamModel} ${CircuitState[d.state]}`).join(", ");
  console.log(
    `${m.id}${aliases}: context ${m.contextWindow} tokens, ` +
      `${formatUsdNanos(m.inputPriceUsdNanosPerMillion)} in / ${formatUsdNanos(m.outputPriceUsdNanosPerMillion)} out per million; ${deployments}`,
  );
}
