// Network, check, server config, install and switch: what the update servers
// change about a boot from the disks. A newer version is written into the
// spare slot only when the running system vouches for it, and becomes SYSFS
// once it is verified on the disk.

import { whyInstallWaits } from "../plans/install-gate.ts";
import { planSwitch, withWrittenLabels } from "../plans/labels.ts";
import { healthOf } from "../plans/slot-health.ts";
import { type InspectedSlot, versionFloor, versionOf } from "../plans/slot.ts";
import { planSpare } from "../plans/spare.ts";
import type { BlockDevice } from "../system/system.ts";
import { slotImage } from "./delta-sources.ts";
import { type HealthChecked, type SlotsUpdated, slotSummaries, verdictOf, withServerConfig } from "./disk-boot.ts";
import type { UpdateReport } from "./report.ts";
import { runSwitchStage } from "./slot-switch.ts";
import { reinspectSlot } from "./slots.ts";
import { machineIdForRollout } from "./machine-id.ts";
import { type AcceptedManifest, type CheckDecision, type InstallGate, summarizeCheck, takesManifest } from "./update-check.ts";
import { type ServerConfigResult, summarizeServerConfig } from "./update-config.ts";
import { type InstallResult, runInstallStage } from "./update-install.ts";
import { checkServers, fetchServerConfig } from "./update-servers.ts";

/** A manifest the check accepted, with the boot as the check found it (its config is the one every update stage uses). */
interface Offer {
  readonly boot: HealthChecked;
  readonly accepted: AcceptedManifest;
  readonly decision: CheckDecision;
  /** what became of it, filled in as the stages go */
  readonly report: Omit<UpdateReport, "slots">;
}

type FetchedServerConfig = Extract<ServerConfigResult, { status: "fetched" }>;

/** Stages "network", "check", "server-config", "install" and "switch". */
export async function updateSlots(boot: HealthChecked): Promise<SlotsUpdated> {
  const { context, health, booting } = boot;
  const versions = {
    installed: booting === undefined ? undefined : versionOf(booting),
    // every slot: a SYSFS whose record was lost must not let a replayed old manifest overwrite a newer BACKUPFS
    floor: versionFloor(health.slots.map((slot) => ({ name: `${slot.device.label} on ${slot.device.device}`, record: slot.record }))),
  };
  // the id the mounts stage keeps on BOOTEXT, as an earlier boot kept it: the check comes before the mounts stage
  const gate: InstallGate = { machineId: () => machineIdForRollout(context.system, boot.bootext, boot.resolved.config.labels.bootext) };
  const { network, check } = await checkServers(context, boot.resolved.config, versions, boot.local, gate);
  context.decisions.push(`update: ${check.reason}`);
  const report: Omit<UpdateReport, "slots"> = { repairs: boot.slots.repairs, network, check: summarizeCheck(check) };
  const accepted = check.accepted;
  // a version held back (not in its rollout, outside the download window) brings neither its config nor its image
  const updated = accepted === undefined || !takesManifest(check.decision) ? boot : await takeOffer({ boot, accepted, decision: check.decision, report });
  return { ...updated, update: { ...report, slots: slotSummaries(updated) } };
}

/** Stage "server-config"; then the server's config applies, or with it a newer version is installed. */
async function takeOffer(offer: Offer): Promise<HealthChecked> {
  const { boot, accepted, report } = offer;
  const serverConfig = await fetchServerConfig(boot.context, boot.resolved.config, accepted, report.network, boot.local);
  report.serverConfig = summarizeServerConfig(serverConfig);
  if (serverConfig.status !== "fetched") {
    if (offer.decision === "install") boot.context.decisions.push(`update: version ${accepted.manifest.version} not installed: its config files could not be fetched`);
    return boot;
  }
  if (offer.decision === "up-to-date") return withServerConfig(boot, serverConfig.layers, "server-config");
  return installOnSpare(offer, serverConfig);
}

/** Stage "install" into the spare slot when the running system vouches for it, then the switch. */
async function installOnSpare(offer: Offer, serverConfig: FetchedServerConfig): Promise<HealthChecked> {
  const { boot, accepted, report } = offer;
  const { context, booting } = boot;
  const before = boot.resolved.config;
  const running = booting && { device: booting.device, failedHealthCheck: verdictOf(boot.health, booting.device.device)?.healthy === false, markedGood: healthOf(booting.health).markedGood };
  const whyNot = whyInstallWaits(running);
  if (booting === undefined || whyNot !== undefined) {
    const reason = `version ${accepted.manifest.version} waits: ${whyNot}, and the spare slot may hold the last healthy one`;
    context.log.forScope("install").warn(reason);
    context.decisions.push(`update: ${reason}`);
    return boot;
  }
  const spare = planSpare(boot.health.slots, booting.device.device, before);
  if (!spare.ok) {
    context.log.forScope("install").error(spare.reason);
    context.decisions.push(`update: ${spare.reason}`);
    return boot;
  }
  const noInstall: InstallResult = {
    status: "failed",
    detail: "the install stage failed",
    version: accepted.manifest.version,
    bytesFetched: 0,
    bytesCopied: 0,
    chunksRefetched: 0,
    resumedFromByte: 0,
    resumes: 0,
    durationMs: 0,
  };
  // the SYSFS that runs stays mounted read-only from the slots stage on: a delta install copies chunks of its image
  const runningDir = boot.kept.dirOf(booting.device.device);
  const runningImage = runningDir === undefined ? undefined : slotImage(`${booting.device.label} on ${booting.device.device}`, runningDir, before);
  const install = await context.stage("install", noInstall, (stageLog) => runInstallStage(context.system, stageLog, before, accepted, serverConfig.files, spare.spare, runningImage, boot.cuts));
  report.install = install;
  const written = await rereadSpare(boot, spare.spare, install);
  context.decisions.push(`update: ${install.detail}`);
  if (install.status !== "installed") return written;
  const installed = { ...spare.spare.device, label: install.label ?? spare.spare.device.label };
  const devices = await switchToInstalled(offer, written, installed, booting.device);
  return withServerConfig({ ...written, devices }, serverConfig.layers, "server-config");
}

/** The spare as the install left it: its label as written, its record read again. */
async function rereadSpare(boot: HealthChecked, spare: InspectedSlot, install: InstallResult): Promise<HealthChecked> {
  const devices = install.label === undefined ? boot.devices : withWrittenLabels(boot.devices, new Map([[spare.device.device, install.label]]));
  const spareNow = await reinspectSlot(boot.context.system, spare, boot.local.resolved.config);
  const slotsNow = boot.slotsNow.map((slot) => (slot.device.device === spareNow.device.device ? spareNow : slot));
  return { ...boot, devices, slotsNow, rewritten: spareNow.device.device };
}

/** Stage "switch": the installed system becomes SYSFS; the devices with the labels written. */
async function switchToInstalled(offer: Offer, written: HealthChecked, installed: BlockDevice, running: BlockDevice): Promise<readonly BlockDevice[]> {
  const { context, cuts, devices } = written;
  const before = offer.boot.resolved.config;
  const steps = planSwitch(installed, running, before);
  const switched = await context.stage("switch", devices, (stageLog) => runSwitchStage(context.system, stageLog, steps, devices, written.kept, cuts));
  offer.report.switched = steps.map((step) => `${step.device.device} ${step.device.label ?? "(no label)"} -> ${step.to}`);
  context.decisions.push(`update: version ${offer.accepted.manifest.version} on ${installed.device} is now ${before.labels.system}`);
  return switched;
}
