/**
 * Every provider the service knows: one line each. Config validates a deployment's `provider:`
 * and reads each one's environment variables from this list; the registry builds the adapters
 * the catalogue uses; the default prices come from here.
 */
import { anthropicDescriptor } from "./anthropic/anthropic-descriptor.js";
import { ollamaDescriptor } from "./ollama/ollama-descriptor.js";
import { openAiDescriptor } from "./openai/openai-descriptor.js";
import { simDescriptor } from "./sim/sim-descriptor.js";

export const PROVIDERS = [simDescriptor, openAiDescriptor, anthropicDescriptor, ollamaDescriptor] as const;

type Descriptor = (typeof PROVIDERS)[number];

/** A provider's name, as a catalogue deployment gives it. */
export type ProviderName = Descriptor["name"];

/** Each provider's settings from the environment, by name (Config.providers). */
export type ProviderSettings = { [D in Descriptor as D["name"]]: ReturnType<D["settings"]> };

/**
 * The names, for validating a deployment's `provider:`. Typed as plain strings on purpose: the
 * descriptors' types reach the adapters, whose methods take a DeploymentConfig, so a
 * DeploymentConfig typed from this list would be a circular type.
 */
export const PROVIDER_NAMES: readonly [string, ...string[]] = [PROVIDERS[0].name, ...PROVIDERS.slice(1).map((d) => d.name)];
