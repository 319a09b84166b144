// Stage "overmounts": AnthillaOS's DIRS. Every DIR_*/FILE_* entry in the
// BOOTEXT partition's DIRS folder is mounted over its target in the new root,
// after the tmpfs mounts so a DIR_etc_ssh lands on top of the tmpfs /etc.
// plans/overmount-names.ts reads the entries' names, plans/overmounts.ts plans
// each mount.

import type { Config } from "../config/schema.ts";
import { type OvermountKind, type OvermountName, orderOvermounts, parseOvermountEntry, type ParsedEntry } from "../plans/overmount-names.ts";
import { planOvermount } from "../plans/overmounts.ts";
import type { Logger } from "../system/log.ts";
import { type MountRecord, mayCreateBelow, resolveInRoot } from "../system/new-root-paths.ts";
import { NEWROOT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { executeSteps } from "./mounts.ts";

export interface OvermountOutcome {
  readonly entry: string;
  readonly status: "mounted" | "skipped" | "refused" | "ignored" | "failed";
  readonly kind?: OvermountKind;
  /** where it went (or would have gone) in the booted system */
  readonly target?: string;
  readonly detail: string;
}

function outcomeOf(parsed: Exclude<ParsedEntry, { status: "overmount" }>): OvermountOutcome {
  return { entry: parsed.entry, status: parsed.status, detail: parsed.reason };
}

export async function runOvermountsStage(
  system: System,
  log: Logger,
  config: Config,
  bootextMount: string | undefined,
  mounts: MountRecord[],
): Promise<OvermountOutcome[]> {
  if (!config.overmounts.enabled) {
    log.info("overmounts are disabled (overmounts.enabled = false)");
    return [];
  }
  if (bootextMount === undefined) {
    log.info(`no ${config.labels.bootext} partition, so no overmounts`);
    return [];
  }
  const folder = `${bootextMount}/${config.overmounts.source}`;
  const info = await system.lstat(folder);
  if (info === undefined) {
    log.info(`no ${config.overmounts.source} folder on ${config.labels.bootext}, so no overmounts`);
    return [];
  }
  if (info.type !== "directory") {
    log.warn(`Cannot read overmounts: ${config.overmounts.source} on ${config.labels.bootext} is a ${info.type}, expected a folder`);
    return [];
  }

  const outcomes: OvermountOutcome[] = [];
  const names: OvermountName[] = [];
  for (const entry of (await system.readdir(folder)).sort()) {
    const type = (await system.lstat(`${folder}/${entry}`))?.type ?? "other";
    const parsed = parseOvermountEntry(entry, type);
    if (parsed.status === "overmount") names.push(parsed.overmount);
    else outcomes.push(outcomeOf(parsed));
  }
  const { ordered, duplicates } = orderOvermounts(names);
  outcomes.push(...duplicates.map(outcomeOf));

  for (const name of ordered) {
    const base = { entry: name.entry, kind: name.kind, target: name.target };
    try {
      const resolved = await resolveInRoot(system, NEWROOT, name.target);
      const mayCreate = resolved.status === "missing" && mayCreateBelow(mounts, NEWROOT, resolved.existing);
      const plan = planOvermount(name, `${folder}/${name.entry}`, resolved, mayCreate);
      if ("refuse" in plan) outcomes.push({ ...base, status: "refused", detail: plan.refuse });
      else if ("skip" in plan) outcomes.push({ ...base, status: "skipped", detail: plan.skip });
      else {
        await executeSteps(system, log, plan.steps, mounts);
        outcomes.push({ ...base, target: plan.target, status: "mounted", detail: plan.created ? `created ${plan.target} on tmpfs first` : "" });
      }
    } catch (error) {
      outcomes.push({ ...base, status: "failed", detail: (error as Error).message });
    }
  }

  for (const outcome of outcomes) {
    const where = outcome.target === undefined ? "" : ` on ${outcome.target}`;
    const detail = outcome.detail === "" ? "" : `: ${outcome.detail}`;
    if (outcome.status === "mounted") log.info(`mounted ${outcome.entry}${where}${detail}`);
    else if (outcome.status === "ignored") log.info(`ignored ${outcome.entry}${detail}`);
    else log.warn(`${outcome.status === "failed" ? "Cannot mount" : outcome.status === "refused" ? "Refused" : "Skipped"} ${outcome.entry}${where}${detail}`);
  }
  return outcomes;
}
