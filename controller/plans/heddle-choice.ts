// Which Heddle update boots, from Heddle's flags on the kernel command line
// and the updates BOOTEXT holds, and what a question on the console and its
// answer mean when the flags leave it to a person. boot/heddle.ts lists the
// updates, asks, checks the one chosen and boots it with kexec.

import type { Cmdline } from "../config/cmdline.ts";
import { HEDDLE_UPDATE_FILES as FILES } from "../system/paths.ts";
import { naturalCompare } from "./natural-order.ts";

/** One updates/NAME folder as the listing found it; `has*` means a regular file of that name is there. */
export interface FoundUpdate {
  readonly name: string;
  readonly hasBoot: boolean;
  readonly hasKernel: boolean;
  readonly hasInitrd: boolean;
  readonly hasCmdline: boolean;
  readonly hasSums: boolean;
  readonly hasSignature: boolean;
  /** the version its signature names, when the signature verifies for this update (console list, report) */
  readonly version?: string;
}

export type HeddlePlan =
  /** no kexec: the boot goes on with the installed system */
  | { readonly kind: "installed"; readonly reason: string }
  | { readonly kind: "kexec"; readonly update: string; readonly reason: string }
  /** heddle_update=NAME whose folder has no BOOT file: ask whether to boot the installed system instead */
  | { readonly kind: "ask-incomplete"; readonly update: string; readonly reason: string }
  /** heddle_update=NAME with no such folder: say so and wait for Enter, as Heddle does */
  | { readonly kind: "ask-missing"; readonly update: string; readonly reason: string }
  /** heddle_update=/: list the updates and ask which one */
  | { readonly kind: "choose"; readonly reason: string };

/** Pure: what this boot does with the updates found, from Heddle's flags; `notes` are warnings for flags that do nothing. */
export function planHeddle(flags: Cmdline["heddle"], updates: readonly FoundUpdate[]): { plan: HeddlePlan; notes: string[] } {
  const notes: string[] = [];
  if (flags.kexecFrom !== undefined) {
    return { plan: { kind: "installed", reason: `booted by kexec from update ${flags.kexecFrom}: no second kexec` }, notes };
  }
  if (flags.boot === "dist") {
    if (flags.update !== undefined) notes.push(`heddle_boot=dist: heddle_update=${flags.update} is ignored`);
    return { plan: { kind: "installed", reason: "heddle_boot=dist: booting the installed system, updates ignored" }, notes };
  }
  if (flags.fallback && (flags.update === undefined || flags.update === "/")) {
    notes.push("heddle_fallback only matters with heddle_update=NAME: ignored");
  }
  const sorted = [...updates].sort((a, b) => naturalCompare(a.name, b.name));
  if (flags.update === "/") {
    if (sorted.length === 0) return { plan: { kind: "installed", reason: "heddle_update=/: there are no updates to choose from, booting the installed system" }, notes };
    return { plan: { kind: "choose", reason: `heddle_update=/: asking which of ${sorted.length} updates to boot` }, notes };
  }
  if (flags.update !== undefined) {
    const name = flags.update;
    const named = sorted.find((update) => update.name === name);
    if (named?.hasBoot === true) return { plan: { kind: "kexec", update: name, reason: `heddle_update=${name}` }, notes };
    const why = named === undefined ? `heddle_update=${name}: there is no such update` : `heddle_update=${name}: it has no ${FILES.boot} file, its copy may be incomplete`;
    if (flags.fallback) return { plan: { kind: "installed", reason: `${why}; heddle_fallback=1: booting the installed system` }, notes };
    return { plan: named === undefined ? { kind: "ask-missing", update: name, reason: why } : { kind: "ask-incomplete", update: name, reason: why }, notes };
  }
  for (const update of sorted) if (!update.hasBoot) notes.push(`update ${update.name} has no ${FILES.boot} file (its copy is not finished?): skipped`);
  const last = sorted.filter((update) => update.hasBoot).at(-1);
  if (last === undefined) {
    const reason = sorted.length === 0 ? "no updates: booting the installed system" : `none of the ${sorted.length} updates has a ${FILES.boot} file: booting the installed system`;
    return { plan: { kind: "installed", reason }, notes };
  }
  return { plan: { kind: "kexec", update: last.name, reason: `${last.name} is the last update by natural sort with a ${FILES.boot} file` }, notes };
}

// ---- questions on the console ----------------------------------------------------

export type Answer =
  | { readonly kind: "installed"; readonly reason: string }
  | { readonly kind: "kexec"; readonly update: string; readonly reason: string }
  | { readonly kind: "again"; readonly problem: string };

/** Pure: one update as the console lists it. */
export function describeUpdate(update: FoundUpdate): string {
  const signature = update.version !== undefined ? `signed, version ${update.version}` : update.hasSignature ? "signature does not verify" : "unsigned";
  const parts = [
    update.hasBoot ? FILES.boot : `no ${FILES.boot}`,
    signature,
    ...(update.hasKernel && update.hasInitrd ? [] : [`no ${update.hasKernel ? FILES.initrd : FILES.kernel}`]),
  ];
  return `${update.name} (${parts.join(", ")})`;
}

/** Pure: the question for a plan that asks, ending where the answer is typed. */
export function questionFor(plan: HeddlePlan, updates: readonly FoundUpdate[], promptSeconds: number): string {
  const deadline = `the installed system boots in ${promptSeconds} s without an answer`;
  switch (plan.kind) {
    case "ask-incomplete":
      return `Update ${plan.update} has no ${FILES.boot} file: its copy may be incomplete.\nBoot the installed system instead? [Y/n] (${deadline}) `;
    case "ask-missing":
      return `There is no update ${plan.update}.\nPress Enter to boot the installed system (${deadline}) `;
    case "choose": {
      const sorted = [...updates].sort((a, b) => naturalCompare(a.name, b.name));
      const lines = sorted.map((update) => `  ${describeUpdate(update)}`);
      return `Updates, in natural order:\n${lines.join("\n")}\nType the name of the update to boot, or press Enter for the installed system (${deadline}): `;
    }
    default:
      return "";
  }
}

/** Pure: what an answer to a plan's question means; undefined is no answer in time. */
export function readAnswer(plan: HeddlePlan, updates: readonly FoundUpdate[], answer: string | undefined): Answer {
  if (answer === undefined) return { kind: "installed", reason: `${plan.reason}; no answer in time: booting the installed system` };
  const typed = answer.trim();
  switch (plan.kind) {
    case "ask-incomplete":
      if (["", "y", "yes"].includes(typed.toLowerCase())) return { kind: "installed", reason: `${plan.reason}; answered to boot the installed system` };
      if (["n", "no"].includes(typed.toLowerCase())) return { kind: "kexec", update: plan.update, reason: `${plan.reason}; answered to boot it anyway` };
      return { kind: "again", problem: `expected y, n or Enter, got ${JSON.stringify(typed)}` };
    case "choose": {
      if (typed === "") return { kind: "installed", reason: `${plan.reason}; answered to boot the installed system` };
      if (updates.some((update) => update.name === typed)) return { kind: "kexec", update: typed, reason: `heddle_update=/: chose ${typed} on the console` };
      return { kind: "again", problem: `there is no update ${JSON.stringify(typed)}; type one of ${updates.map((u) => u.name).join(", ")}, or nothing` };
    }
    default:
      return { kind: "installed", reason: `${plan.reason}; booting the installed system` };
  }
}
