// The end of a boot from the disks: the first slot that works mounted at the
// new root, BOOTEXT's overmounts over it and the boot counted on the slot; or,
// when no slot works, the lines that tell the console why nothing boots.

import type { Config } from "../config/schema.ts";
import { type BootPlan, planBoot } from "../plans/boot-order.ts";
import { describeDevices } from "../plans/devices.ts";
import { slotMountPoint } from "../plans/mounts.ts";
import type { HealthRecord } from "../plans/slot-health.ts";
import type { MountRecord } from "../system/new-root-paths.ts";
import type { BlockDevice } from "../system/system.ts";
import { trustOf } from "./boot-config.ts";
import type { SlotsUpdated } from "./disk-boot.ts";
import type { MountedRoot } from "./finish.ts";
import { kernelDecision, type KernelSwitchInputs, type KernelSwitchResult, runKernelSwitchStage } from "./kernel-switch.ts";
import { type BootedSlot, type MountsResult, runMountsStage } from "./mounts.ts";
import { type OvermountOutcome, runOvermountsStage } from "./overmounts.ts";
import { countBootAttempt } from "./slot-health.ts";

interface OnBooted {
  readonly overmounts: OvermountOutcome[];
  readonly health: HealthRecord | undefined;
  readonly kernel: KernelSwitchResult | undefined;
}

/** Stages "mounts", "overmounts" and "attempt": the root this boot hands over. */
export async function mountSlot(boot: SlotsUpdated): Promise<MountedRoot> {
  const { context, update, devices, bootext, cuts } = boot;
  const config = boot.resolved.config;
  // after a switch the new system, verified as it was installed, boots first
  const plan: BootPlan = update.switched === undefined ? boot.health.plan : planBoot(devices, config);
  const noMounts: MountsResult = { mounts: [], failedSlots: [], tmpfs: [] };
  const mounted = await context.stage("mounts", noMounts, (stageLog) => runMountsStage(context.system, stageLog, config, plan.candidates, bootext, boot.kept, cuts));
  const mounts = [...mounted.mounts];
  context.decisions.push(...plan.decisions);
  const booted = mounted.booted;
  const { overmounts, health, kernel } = booted === undefined ? { overmounts: [], health: undefined, kernel: undefined } : await runOnBooted(boot, booted, mounts);
  return {
    resolved: boot.resolved,
    // content from command_url= and ssh_keys_url= is trusted as the machine's own config says, never a server's
    trust: trustOf(boot.local),
    network: update.network,
    report: {
      partitions: devices,
      bootext: { readOnly: bootext.readOnly, ...(bootext.device === undefined ? {} : { device: bootext.device, mountPoint: bootext.mountPoint }) },
      heddle: boot.heddle,
      update,
      boot: { ...plan, failedSlots: mounted.failedSlots, ...(booted === undefined ? {} : { booted }), ...(health === undefined ? {} : { health }) },
      mounts,
      tmpfs: mounted.tmpfs,
      ...(mounted.machineId === undefined ? {} : { machineId: mounted.machineId }),
      overmounts,
      ...(kernel === undefined ? {} : { kernel }),
    },
    ...(booted === undefined ? { nothingBootable: nothingBootable(config, devices, mounted.failedSlots) } : {}),
  };
}

/** Stages "overmounts", "attempt" and "kernel" on the slot that booted. */
async function runOnBooted(boot: SlotsUpdated, booted: BootedSlot, mounts: MountRecord[]): Promise<OnBooted> {
  const { context, bootext, cuts } = boot;
  const config = boot.resolved.config;
  context.decisions.push(`booted ${booted.label} (${booted.role}) from ${booted.device}`);
  const overmounts = await context.stage("overmounts", [], (stageLog) => runOvermountsStage(context.system, stageLog, config, bootext.mountPoint, mounts));
  const record = boot.slotsNow.find((slot) => slot.device.device === booted.device)?.record;
  const manifest = record?.status === "valid" ? record.manifest : undefined;
  const inputs: KernelSwitchInputs = {
    config,
    cmdline: context.cmdline,
    slot: `${booted.label} on ${booted.device}${manifest === undefined ? "" : ` (version ${manifest.version})`}`,
    slotKernel: manifest?.kernel,
    bootext: bootext.mountPoint === undefined ? undefined : { mountPoint: bootext.mountPoint, readOnly: bootext.readOnly },
    cuts,
  };
  // the boot that switched kernels counted this one before its kexec or reboot: counting again would halve health.max_attempts
  const early = boot.countedEarly?.device === booted.device ? boot.countedEarly.how : undefined;
  const health = await context.stage("attempt", undefined, async (stageLog) => {
    if (early === "kexec") {
      stageLog.info(`this boot came by kexec of ${booted.label}'s own kernel: its attempt was counted before the kexec`);
      return undefined;
    }
    if (early === "armed-reboot") {
      stageLog.info(`this boot is the one BOOTEXT's armed reboot sent GRUB to (BOOT_IMAGE=${context.cmdline.bootImage ?? ""}, grubenv saved_entry=recovery): its attempt was counted before the reboot`);
      return undefined;
    }
    const counted = await countBootAttempt(context.system, slotMountPoint(booted), `${booted.label} on ${booted.device}`, cuts);
    stageLog.info(`boot ${counted.attempts} of ${config.health.max_attempts} on ${booted.label} without a mark-good`);
    return counted;
  });
  const kernel = await context.stage("kernel", undefined, (stageLog) => runKernelSwitchStage(context.system, stageLog, inputs));
  if (kernel !== undefined) context.decisions.push(kernelDecision(kernel));
  return { overmounts, health, kernel };
}

/** What the console says when no slot could be mounted. */
function nothingBootable(config: Config, devices: readonly BlockDevice[], failedSlots: MountsResult["failedSlots"]): string[] {
  const failed = failedSlots.map(({ candidate, error }) => `${candidate.label} on ${candidate.device}: ${error}`);
  return [
    "NOTHING TO BOOT.",
    `Looked for partitions labelled ${config.labels.system} or ${config.labels.backup}.`,
    `Filesystems seen: ${describeDevices(devices)}.`,
    ...(failed.length > 0 ? [`Tried and failed: ${failed.join("; ")}.`] : []),
  ];
}
