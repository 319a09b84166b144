// Stage "check": ask the update servers, in the order config.d lists them,
// whether a newer system is published for this machine's channel. A manifest
// counts only when its signature is valid for a trusted key and it passes
// decideUpdate (channel, expiry, validity, no version below any slot's). A
// server that is down, or that serves something refused, does not stop the
// next one from being asked: a stale or compromised mirror must not keep a
// machine from a good one.

import type { Config } from "../config/schema.ts";
import { whyOutsideWindow } from "../plans/download-window.ts";
import { decideRollout } from "../plans/rollout.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import { decideUpdate, type Manifest, MANIFEST_MAX_BYTES, manifestPath, parseManifest, resolveRepoUrl, SIGNATURE_MAX_BYTES, signaturePath, type VersionFloor } from "../update/manifest.ts";
import { sha512Hex, verifySignature } from "../update/signing.ts";
import { FetchError, fetchCapped } from "./http-fetch.ts";
import type { RolloutMachineId } from "./machine-id.ts";
import type { NetworkResult } from "./network.ts";

export type CheckDecision =
  /** update.servers is empty */
  | "not-configured"
  /** servers are configured but the network did not come up */
  | "no-network"
  /** no server answered */
  | "unreachable"
  /** servers answered, but nothing they served may be installed */
  | "refused"
  | "up-to-date"
  | "install"
  /** a newer version is published for a share of the machines this one is not in */
  | "not-in-rollout"
  /** a newer version may install, but not now: update.download_window */
  | "outside-window";

/**
 * What a boot from the disks needs to hold an install back: it has a local
 * system to stay on. A diskless boot passes none: it has nothing else to run,
 * so it runs what its server publishes, whatever the rollout or the hour.
 */
export interface InstallGate {
  /** read only when a manifest rolls out to a share below 100 % */
  readonly machineId: () => Promise<RolloutMachineId>;
}

/** A manifest's rollout as this machine saw it. */
export interface RolloutSeen {
  readonly percent: number;
  /** this machine's place in [0, 100); absent when it has no machine-id */
  readonly place?: number;
}

export interface ServerAttempt {
  readonly server: string;
  readonly outcome: "accepted" | "refused" | "unreachable";
  readonly detail: string;
}

/** A manifest whose signature checked out, and what the machine makes of it. */
export interface AcceptedManifest {
  readonly server: string;
  readonly manifest: Manifest;
  readonly manifestBytes: Uint8Array;
  readonly signature: string;
  /** the trusted key that signed it */
  readonly key: string;
}

export interface CheckResult {
  readonly decision: CheckDecision;
  /** one sentence: why */
  readonly reason: string;
  readonly attempts: readonly ServerAttempt[];
  /** the manifest that decided; with "not-in-rollout" and "outside-window" it is not taken */
  readonly accepted?: AcceptedManifest;
  readonly rollout?: RolloutSeen;
}

/** Decisions that are no trouble, said as info; the others are warnings. */
const AS_PLANNED: readonly CheckDecision[] = ["install", "up-to-date", "not-configured", "not-in-rollout", "outside-window"];

/** Only these decisions take the accepted manifest's config and image. */
export function takesManifest(decision: CheckDecision): boolean {
  return decision === "install" || decision === "up-to-date";
}

type Gated =
  | { readonly decision: "install"; readonly rollout?: RolloutSeen }
  | { readonly decision: "not-in-rollout" | "outside-window"; readonly why: string; readonly rollout?: RolloutSeen };

/**
 * Whether an install the manifest allows goes ahead on this boot: not when
 * this machine is not in the version's rollout, nor outside
 * update.download_window. The rollout first: a machine that is not in it has
 * nothing to wait for.
 */
async function gateInstall(gate: InstallGate, config: Config, manifest: Manifest, now: Date, log: Logger): Promise<Gated> {
  let seen: { rollout?: RolloutSeen } = {};
  if (manifest.rollout !== undefined && manifest.rollout.percent < 100) {
    const { percent } = manifest.rollout;
    const machineId = await gate.machineId();
    const decided = decideRollout({ version: manifest.version, percent, machineId: "id" in machineId ? machineId.id : undefined, ...("why" in machineId ? { noIdWhy: machineId.why } : {}) });
    seen = { rollout: { percent, ...(decided.place === undefined ? {} : { place: decided.place }) } };
    if (!decided.placed) return { decision: "not-in-rollout", why: decided.reason, ...seen };
    if (decided.reason !== undefined) log.info(decided.reason);
  }
  const outside = whyOutsideWindow(config.update.download_window, config.update.timezone, now);
  return outside === undefined ? { decision: "install", ...seen } : { decision: "outside-window", why: outside, ...seen };
}

type Attempt =
  | { outcome: "unreachable" | "refused"; detail: string }
  | { outcome: "accepted"; action: "install" | "up-to-date"; accepted: AcceptedManifest; detail: string };

async function askServer(system: System, config: Config, server: string, versions: SlotVersions, trustedKeys: readonly string[]): Promise<Attempt> {
  const channel = config.update.channel;
  const manifestUrl = resolveRepoUrl(server, manifestPath(channel));
  let manifestBytes: Uint8Array;
  let signature: string;
  try {
    manifestBytes = await fetchCapped(system, config, manifestUrl, MANIFEST_MAX_BYTES);
  } catch (error) {
    return { outcome: "unreachable", detail: (error as Error).message };
  }
  const signatureUrl = resolveRepoUrl(server, signaturePath(channel, sha512Hex(manifestBytes)));
  try {
    signature = new TextDecoder().decode(await fetchCapped(system, config, signatureUrl, SIGNATURE_MAX_BYTES));
  } catch (error) {
    if (error instanceof FetchError && error.status === 404) {
      // signatures are named by the manifest's hash: a changed manifest has none
      return { outcome: "refused", detail: `Cannot trust ${manifestUrl}: there is no signature for these exact bytes (${signatureUrl} is missing); the manifest was changed after it was signed, or its signature was not published` };
    }
    return { outcome: "unreachable", detail: (error as Error).message };
  }
  const signed = verifySignature(manifestBytes, signature, trustedKeys, { purpose: "manifest", target: channel, now: system.wallClock() });
  if (!signed.ok) return { outcome: "refused", detail: `Cannot trust ${manifestUrl}: ${signed.problem}` };
  const parsed = parseManifest(manifestBytes, manifestUrl);
  if (!parsed.ok) return { outcome: "refused", detail: parsed.problems.join("; ") };
  const decision = decideUpdate({
    manifest: parsed.manifest,
    channel,
    installedVersion: versions.installed,
    versionFloor: versions.floor,
    maxValidityDays: config.update.max_manifest_validity_days,
    now: system.wallClock(),
  });
  if (decision.action === "refuse") return { outcome: "refused", detail: decision.reason };
  const accepted = { server, manifest: parsed.manifest, manifestBytes, signature, key: signed.key };
  return { outcome: "accepted", action: decision.action, accepted, detail: `version ${parsed.manifest.version}, signed by ${signed.key}, expires ${parsed.manifest.expires}` };
}

/** What the machine's slots say about versions, from their verified records. */
export interface SlotVersions {
  /** the verified version of the slot that boots; undefined when it has none */
  readonly installed: string | undefined;
  /** the highest version verified on any slot (versionFloor); undefined when no slot has a record */
  readonly floor: VersionFloor | undefined;
}

function describeInstalled(versions: SlotVersions): string {
  if (versions.installed !== undefined) return versions.installed;
  if (versions.floor === undefined) return "unknown: no slot has a verified record, so any signed version may install";
  return `unknown: the slot that boots has no verified record; nothing below version ${versions.floor.version} (on ${versions.floor.slot}) may install`;
}

/** `trustedKeys` come from the local config only; `gate` undefined: nothing holds an install back (a diskless boot). */
export async function runCheckStage(
  system: System,
  log: Logger,
  config: Config,
  network: NetworkResult,
  versions: SlotVersions,
  trustedKeys: readonly string[],
  gate?: InstallGate,
): Promise<CheckResult> {
  const servers = config.update.servers;
  const result = (decision: CheckDecision, reason: string, attempts: ServerAttempt[] = [], accepted?: AcceptedManifest, rollout?: RolloutSeen): CheckResult => {
    (AS_PLANNED.includes(decision) ? log.info : log.warn).call(log, reason);
    return { decision, reason, attempts, ...(accepted === undefined ? {} : { accepted }), ...(rollout === undefined ? {} : { rollout }) };
  };
  if (servers.length === 0) return result("not-configured", "no update servers configured (update.servers): booting the local system");
  if (network.status !== "up") return result("no-network", `no network (${network.detail}): booting the local system without an update check`);
  if (trustedKeys.length === 0) {
    return result("refused", "no trusted keys configured (update.trusted_keys): every update would be refused, so no server is asked");
  }

  const attempts: ServerAttempt[] = [];
  for (const server of servers) {
    log.info(`asking ${server} for channel ${config.update.channel}`);
    const attempt = await askServer(system, config, server, versions, trustedKeys);
    attempts.push({ server, outcome: attempt.outcome, detail: attempt.detail });
    if (attempt.outcome !== "accepted") {
      log.warn(`${server}: ${attempt.detail}`);
      continue;
    }
    const { manifest } = attempt.accepted;
    if (attempt.action === "up-to-date") {
      return result("up-to-date", `${server} publishes version ${manifest.version}, which is installed: nothing to do`, attempts, attempt.accepted);
    }
    const publishes = `${server} publishes version ${manifest.version} (installed: ${describeInstalled(versions)})`;
    const gated: Gated = gate === undefined ? { decision: "install" } : await gateInstall(gate, config, manifest, system.wallClock(), log);
    if (gated.decision !== "install") return result(gated.decision, `${publishes}, but ${gated.why}`, attempts, attempt.accepted, gated.rollout);
    return result("install", `${publishes}: installing it`, attempts, attempt.accepted, gated.rollout);
  }
  const answered = attempts.some((attempt) => attempt.outcome === "refused");
  return answered
    ? result("refused", `nothing the update servers serve may be installed: booting the local system`, attempts)
    : result("unreachable", `no update server could be reached (${attempts.length === 1 ? "its reason is" : "their reasons are"} above): booting the local system`, attempts);
}

/** The check as the boot report keeps it: no manifest bytes, but what the manifest said. */
export interface CheckSummary {
  readonly decision: CheckDecision;
  readonly reason: string;
  readonly attempts: readonly ServerAttempt[];
  /** the manifest's share of machines and this machine's place, when it rolls out to fewer than all */
  readonly rollout?: RolloutSeen;
  readonly manifest?: {
    readonly server: string;
    readonly version: string;
    readonly channel: string;
    readonly created: string;
    readonly expires: string;
    readonly image: Manifest["image"];
    readonly signedBy: string;
  };
}

export function summarizeCheck(check: CheckResult): CheckSummary {
  const { decision, reason, attempts, accepted } = check;
  const rollout = check.rollout === undefined ? {} : { rollout: check.rollout };
  if (accepted === undefined) return { decision, reason, attempts, ...rollout };
  const { manifest } = accepted;
  return {
    decision,
    reason,
    attempts,
    ...rollout,
    manifest: {
      server: accepted.server,
      version: manifest.version,
      channel: manifest.channel,
      created: manifest.created,
      expires: manifest.expires,
      image: manifest.image,
      signedBy: accepted.key,
    },
  };
}
