// What both boots, from disks or from RAM, ask of the update servers: the
// network, a signed manifest (stage "check"), then the config files it names
// for this machine (stage "server-config"). A stage that throws is replaced by
// a result that changes nothing.

import type { Config } from "../config/schema.ts";
import { networkNeed } from "../plans/network-need.ts";
import type { LocalConfig } from "./boot-config.ts";
import type { BootContext } from "./boot-start.ts";
import { type NetworkResult, runNetworkStage } from "./network.ts";
import { type AcceptedManifest, type CheckResult, type InstallGate, runCheckStage, type SlotVersions } from "./update-check.ts";
import { runServerConfigStage, type ServerConfigResult } from "./update-config.ts";

export interface ServersAnswer {
  readonly network: NetworkResult;
  readonly check: CheckResult;
}

/**
 * Stages "network" and "check": the newest manifest signed by a key the machine trusts, if a server has one.
 * `gate`: what may hold an install back (a rollout, the download window); a diskless boot has none.
 */
export async function checkServers(context: BootContext, config: Config, versions: SlotVersions, local: LocalConfig, gate?: InstallGate): Promise<ServersAnswer> {
  const { system, stage, cmdline } = context;
  const noNetwork: NetworkResult = { status: "down", macs: [], detail: "the network stage failed" };
  const network = await stage("network", noNetwork, (stageLog) => runNetworkStage(system, stageLog, config, networkNeed(config, cmdline)));
  const noCheck: CheckResult = { decision: "unreachable", reason: "the check stage failed", attempts: [] };
  const trustedKeys = local.resolved.config.update.trusted_keys;
  const check = await stage("check", noCheck, (stageLog) => runCheckStage(system, stageLog, config, network, versions, trustedKeys, gate));
  return { network, check };
}

/** Stage "server-config": the config files the accepted manifest names for this machine. */
export function fetchServerConfig(context: BootContext, config: Config, accepted: AcceptedManifest, network: NetworkResult, local: LocalConfig): Promise<ServerConfigResult> {
  // the name that picks the server's per-machine config: a DHCP server could set the hostname, and a server's config could name another machine
  const machine = { macs: network.macs, name: local.resolved.config.update.machine_name };
  const noServerConfig: ServerConfigResult = { status: "failed", problem: "the server-config stage failed" };
  return context.stage("server-config", noServerConfig, (stageLog) => runServerConfigStage(context.system, stageLog, config, accepted, machine));
}
