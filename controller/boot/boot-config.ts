// The config of a boot as its layers arrive: first the layers that need no
// disk (the initramfs's config.d and the command line's overrides), to know
// which labels to look for; BOOTEXT's once it is mounted; then the update
// server's, kept on the slot or fetched now. Trust comes from the machine
// itself (initramfs, BOOTEXT, command line), never from what a slot or server says.

import { cmdlineLayers, type ConfigLayer, DEFAULTS_SOURCE, loadInitramfsConfig, type ResolvedConfig, resolveConfig } from "../config/layers.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import type { BootContext } from "./boot-start.ts";
import type { BootextResult } from "./bootext.ts";
import type { TrustPolicy } from "./remote-content.ts";

/** The machine's own config: its layers, and what they resolve to. */
export interface LocalConfig {
  readonly layers: readonly ConfigLayer[];
  readonly resolved: ResolvedConfig;
}

function logConfig(log: Logger, resolved: ResolvedConfig, previous: readonly string[] = []): void {
  for (const problem of resolved.problems) if (!previous.includes(problem)) log.error(`${problem}; that file is ignored, the boot goes on without it`);
}

function applyCommandTimeout(system: System, resolved: ResolvedConfig): void {
  system.setCommandTimeout(resolved.config.timeouts.command_seconds * 1000);
}

/** Stage "config": the layers that need no disk; BOOTEXT's come later. */
export async function readEarlyConfig(context: BootContext): Promise<LocalConfig> {
  const { system, stage, cmdline } = context;
  const early = await stage("config", { layers: [] as ConfigLayer[], resolved: resolveConfig([]) }, async (stageLog) => {
    const layers = [...(await loadInitramfsConfig(system)), ...cmdlineLayers(cmdline.configOverrides)];
    const resolvedEarly = resolveConfig(layers);
    logConfig(stageLog, resolvedEarly);
    const applied = resolvedEarly.layers.filter((layer) => layer.status === "applied").length - 1;
    stageLog.info(`${applied} config layers applied over the built-in defaults, ${resolvedEarly.problems.length} problems`);
    return { layers, resolved: resolvedEarly };
  });
  applyCommandTimeout(system, early.resolved);
  return early;
}

/** BOOTEXT's config.d over the early layers: the machine's whole own config. */
export function withBootextLayers(context: BootContext, early: LocalConfig, bootext: BootextResult): LocalConfig {
  const layers = [...early.layers, ...bootext.layers];
  if (bootext.layers.length === 0) return { layers, resolved: early.resolved };
  const resolved = resolveConfig(layers);
  logConfig(context.log.forScope("bootext"), resolved, early.resolved.problems);
  applyCommandTimeout(context.system, resolved);
  return { layers, resolved };
}

/**
 * The server's layers may not say where the machine reports: a server that
 * could set fleet.* could send every report, and the token with it, to a host
 * of its choosing. Its fleet.* values are replaced by the machine's own, so
 * the report's config.values, which the booted system's sender reads, holds
 * those, and its provenance says where they came from.
 */
function withOwnFleet(resolved: ResolvedConfig, local: ResolvedConfig): ResolvedConfig {
  const own = local.config.fleet;
  const provenance = { ...resolved.provenance };
  for (const key of Object.keys(own)) provenance[`fleet.${key}`] = local.provenance[`fleet.${key}`] ?? DEFAULTS_SOURCE;
  return { ...resolved, config: { ...resolved.config, fleet: own }, provenance };
}

/**
 * The machine's own config with a server's layers over it, logging the
 * problems not among `previous`. The keys the machine trusts stay its own,
 * and so does where it reports (fleet.*).
 */
export function withServerLayers(
  context: BootContext,
  local: LocalConfig,
  serverLayers: readonly ConfigLayer[],
  scope: string,
  previous: readonly string[] = [],
): ResolvedConfig {
  const resolved = resolveConfig([...local.layers, ...serverLayers]);
  logConfig(context.log.forScope(scope), resolved, previous);
  if (resolved.config.update.trusted_keys.join() !== local.resolved.config.update.trusted_keys.join()) {
    context.log.forScope(scope).warn("the server's config sets update.trusted_keys: ignored, the keys the machine trusts come from its own config");
  }
  const own = local.resolved.config.fleet;
  if (Object.entries(own).some(([key, value]) => resolved.config.fleet[key as keyof typeof own] !== value)) {
    context.log.forScope(scope).warn("the server's config sets fleet.*: ignored, where the machine reports comes from its own config");
  }
  applyCommandTimeout(context.system, resolved);
  return withOwnFleet(resolved, local.resolved);
}

/** Who may sign command_url= and ssh_keys_url= content: the machine's own config says, never a server's. */
export function trustOf(local: LocalConfig): TrustPolicy {
  return { trustedKeys: local.resolved.config.update.trusted_keys, allowUnsigned: local.resolved.config.remote.allow_unsigned };
}
