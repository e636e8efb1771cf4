/**
 * Every wire format the simulator speaks, one line each (the first is the default for requests
 * no dialect claims). The server routes chat POSTs and GETs by what each declares.
 */
import { anthropic } from "./anthropic.js";
import type { Dialect } from "./dialect.js";
import { ollama } from "./ollama.js";
import { openai } from "./openai.js";

export const DIALECTS: readonly [Dialect, ...Dialect[]] = [openai, anthropic, ollama];
