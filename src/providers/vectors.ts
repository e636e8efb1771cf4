import { LlmError } from "../errors/llm-error.js";

/**
 * An upstream's vectors as Float32Arrays in input order, checked: one per input, each index
 * once, all of one length. Anything else is a broken answer (PROVIDER_UNAVAILABLE), not a result.
 */
export function vectorsInOrder(provider: string, inputs: number, data: readonly { index: number; values: ArrayLike<number> }[]): Float32Array[] {
  const out: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(inputs).fill(undefined);
  let broken = data.length !== inputs;
  for (const { index, values } of data) {
    if (!Number.isInteger(index) || index < 0 || index >= inputs || out[index] !== undefined) broken = true;
    else out[index] = Float32Array.from(values);
  }
  const length = out[0]?.length;
  if (broken || out.some((v) => v === undefined || v.length !== length || v.length === 0)) {
    throw new LlmError("PROVIDER_UNAVAILABLE", `${provider} answered ${data.length} embeddings for ${inputs} inputs, or vectors of unequal length`, {
      metadata: { provider },
    });
  }
  return out as Float32Array[];
}
