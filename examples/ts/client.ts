/**
 * The client every example uses, from the environment:
 *   LLM_API_KEY   the key (`npm start` prints a development key on first start)
 *   LLM_BASE_URL  default http://127.0.0.1:8080
 *   LLM_PROTOCOL  connect (default), grpc or grpc-web
 */
import { createLlmClient, type LlmProtocol } from "@llm-service/sdk";

const apiKey = process.env["LLM_API_KEY"];
if (!apiKey) {
  console.error("set LLM_API_KEY (npm start prints a development key on its first start)");
  process.exit(2);
}

export const protocol = (process.env["LLM_PROTOCOL"] ?? "connect") as LlmProtocol;

export const llm = createLlmClient({
  baseUrl: process.env["LLM_BASE_URL"] ?? "http://127.0.0.1:8080",
  apiKey,
  protocol,
  // The default deadline of every call that sets none (the SDK's own default is 60 s).
  timeoutMs: 30_000,
});
