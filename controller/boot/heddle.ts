// Stage "heddle": Heddle's updates (../shared/seeds, "Updating Heddle"). An
// update is a kernel and initramfs in BOOTEXT/updates/NAME/, with a BOOT file
// written last; the chosen one boots with kexec before anything on the disks
// is touched. Beyond Heddle, which verifies nothing, an update must carry
// SHA512SUMS signed by a trusted key (unless config.d allows unsigned ones)
// for this very update: the signature names the update's folder and its
// version (`controller sign --purpose heddle`), so an older signed update
// copied under a name that sorts last is refused. Every file the kexec uses
// must match SHA512SUMS. The kexec'd command line carries
// rd.controller.kexec=NAME, so the new kernel's controller never kexecs again.
// Whatever goes wrong, the installed system boots. What boots and what the
// checks find are decided in plans/ (heddle-choice.ts, heddle-sums.ts,
// kexec-cmdline.ts, natural-order.ts).

import { createHash } from "node:crypto";
import { type Cmdline, UPDATE_NAME } from "../config/cmdline.ts";
import type { Config } from "../config/schema.ts";
import { type Answer, describeUpdate, type FoundUpdate, type HeddlePlan, planHeddle, questionFor, readAnswer } from "../plans/heddle-choice.ts";
import { checkSums, parseSha512Sums } from "../plans/heddle-sums.ts";
import { kexecCmdline } from "../plans/kexec-cmdline.ts";
import { naturalCompare } from "../plans/natural-order.ts";
import type { Logger } from "../system/log.ts";
import { HEDDLE_UPDATE_FILES as FILES } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";
import { SUMS_MAX_BYTES } from "../update/limits.ts";
import { SIGNATURE_MAX_BYTES } from "../update/manifest.ts";
import { type SignatureCheck, signCommandFor, verifySignature } from "../update/signing.ts";
import type { BootextResult } from "./bootext.ts";

/** A wrong answer is asked again this often in all, then the installed system boots: never wait forever. */
export const PROMPT_ATTEMPTS = 3;
const CMDLINE_FILE_MAX_BYTES = 4096;

export interface SkippedEntry {
  readonly name: string;
  readonly reason: string;
}

export interface HeddleQuestion {
  readonly question: string;
  /** undefined: nothing typed before the deadline */
  readonly answer?: string;
}

export interface HeddleResult {
  /** where updates were looked for; undefined without BOOTEXT */
  readonly updatesDir?: string;
  readonly updates: readonly FoundUpdate[];
  readonly skipped: readonly SkippedEntry[];
  /** this boot was started by the controller's kexec of that update */
  readonly kexecFrom?: string;
  readonly questions: readonly HeddleQuestion[];
  /** the update picked to boot, whether or not it then booted */
  readonly chosen?: string;
  /**
   * installed: no update picked. refused: it failed its checks. load-failed:
   * kexec could not load it. exec-failed: kexec --exec returned. (A kexec that
   * works never returns, so its report is the next boot's, with kexecFrom.)
   */
  readonly status: "installed" | "booted-by-kexec" | "refused" | "load-failed" | "exec-failed";
  readonly reason: string;
  /** what the chosen update's checks found; `version` is the one its signature names */
  readonly verification?: {
    readonly signedBy?: string;
    readonly version?: string;
    readonly files: readonly { readonly name: string; readonly sha512: string }[];
  };
  readonly cmdline?: string;
}

async function isFile(system: System, path: string): Promise<boolean> {
  return (await system.lstat(path))?.type === "file";
}

/**
 * Whether SHA512SUMS.sig signs these exact SHA512SUMS bytes for the update
 * named `name`, with a version; `sumsBytes` undefined: there is no SHA512SUMS.
 */
async function checkUpdateSignature(system: System, dir: string, name: string, sumsBytes: Uint8Array | undefined, config: Config): Promise<SignatureCheck> {
  if (sumsBytes === undefined) return { ok: false, problem: `it has ${FILES.signature} but no ${FILES.sums} for it to sign` };
  const signatureFile = `${dir}/${name}/${FILES.signature}`;
  const signature = new TextDecoder().decode(await system.readBytes(signatureFile, SIGNATURE_MAX_BYTES));
  const checked = verifySignature(sumsBytes, signature, config.update.trusted_keys, { purpose: "heddle", target: name, now: system.wallClock() });
  if (!checked.ok) return { ok: false, problem: `${signatureFile}: ${checked.problem} (update.trusted_keys)` };
  if (checked.claims?.version === undefined) {
    return { ok: false, problem: `${signatureFile}: the signature names no version: re-sign it with \`${signCommandFor("heddle", name)}\`` };
  }
  return checked;
}

function readSums(system: System, dir: string, name: string): Promise<Uint8Array> {
  return system.readBytes(`${dir}/${name}/${FILES.sums}`, SUMS_MAX_BYTES);
}

/** Every updates/NAME folder, sorted naturally; entries that cannot be updates are skipped with the reason. */
async function listUpdates(system: System, dir: string, config: Config): Promise<{ updates: FoundUpdate[]; skipped: SkippedEntry[] }> {
  const info = await system.lstat(dir);
  if (info === undefined) return { updates: [], skipped: [] };
  if (info.type !== "directory") throw new Error(`Cannot read the updates in ${dir}: it is a ${info.type}, expected a folder`);
  const updates: FoundUpdate[] = [];
  const skipped: SkippedEntry[] = [];
  for (const name of await system.readdir(dir)) {
    if (!UPDATE_NAME.test(name)) {
      skipped.push({ name, reason: "not an update name (letters, digits, \".\", \"_\", \"+\" or \"-\", not starting with a punctuation mark)" });
      continue;
    }
    const type = (await system.lstat(`${dir}/${name}`))?.type;
    if (type !== "directory") {
      skipped.push({ name, reason: `a ${type ?? "vanished entry"}, expected a folder` });
      continue;
    }
    const has = (file: string) => isFile(system, `${dir}/${name}/${file}`);
    const hasSums = await has(FILES.sums);
    const hasSignature = await has(FILES.signature);
    // for the list only: the update that is picked is checked again from its files
    let version: string | undefined;
    if (hasSignature) {
      try {
        const checked = await checkUpdateSignature(system, dir, name, hasSums ? await readSums(system, dir, name) : undefined, config);
        version = checked.ok ? checked.claims?.version : undefined;
      } catch {
        // an unreadable signature is listed as one that does not verify; the checks of the picked update tell why
      }
    }
    updates.push({
      name,
      hasBoot: await has(FILES.boot),
      hasKernel: await has(FILES.kernel),
      hasInitrd: await has(FILES.initrd),
      hasCmdline: await has(FILES.cmdline),
      hasSums,
      hasSignature,
      ...(version === undefined ? {} : { version }),
    });
  }
  updates.sort((a, b) => naturalCompare(a.name, b.name));
  return { updates, skipped };
}

async function sha512OfFile(system: System, path: string): Promise<string> {
  const hash = createHash("sha512");
  for await (const chunk of system.readChunks(path)) hash.update(chunk);
  return hash.digest("hex");
}

type Verified =
  | { ok: true; signedBy?: string; version?: string; files: { name: string; sha512: string }[]; cmdline: string }
  | { ok: false; problem: string };

/** The signature, the checksums of every file the kexec uses, and the command line it gets. */
async function verifyUpdate(system: System, log: Logger, dir: string, update: FoundUpdate, cmdline: Cmdline, config: Config): Promise<Verified> {
  const path = (file: string) => `${dir}/${update.name}/${file}`;
  for (const [file, present] of [[FILES.kernel, update.hasKernel], [FILES.initrd, update.hasInitrd]] as const) {
    if (!present) return { ok: false, problem: `it has no ${file} file (${path(file)}), expected a regular file` };
  }
  let signedBy: string | undefined;
  let version: string | undefined;
  // the signature covers SHA512SUMS's exact bytes, so those are what is verified, not a decoded copy
  const sumsBytes = update.hasSums ? await readSums(system, dir, update.name) : undefined;
  const sumsText = sumsBytes === undefined ? undefined : new TextDecoder().decode(sumsBytes);
  if (update.hasSignature) {
    const checked = await checkUpdateSignature(system, dir, update.name, sumsBytes, config);
    if (!checked.ok) return { ok: false, problem: checked.problem };
    signedBy = checked.key;
    version = checked.claims?.version;
  } else if (!config.heddle.allow_unsigned) {
    return {
      ok: false,
      problem: `it is not signed: no ${FILES.signature}, and heddle.allow_unsigned is false (sign it with \`${signCommandFor("heddle", update.name)}\`)`,
    };
  } else {
    log.warn(`update ${update.name} is not signed: booting it anyway because heddle.allow_unsigned is true`);
  }

  const cmdlineFile = update.hasCmdline ? new TextDecoder().decode(await system.readBytes(path(FILES.cmdline), CMDLINE_FILE_MAX_BYTES)) : undefined;
  const used = new Map<string, string>();
  for (const file of [FILES.kernel, FILES.initrd, ...(update.hasCmdline ? [FILES.cmdline] : [])]) used.set(file, await sha512OfFile(system, path(file)));
  if (sumsText === undefined) {
    log.warn(`update ${update.name} has no ${FILES.sums}: its files are not checked`);
  } else {
    const parsed = parseSha512Sums(sumsText);
    if (!parsed.ok) return { ok: false, problem: `${path(FILES.sums)}: ${parsed.problem}` };
    const problems = checkSums(parsed.sums, used);
    if (problems.length > 0) return { ok: false, problem: `${path(FILES.sums)}: ${problems.join("; ")}` };
  }
  const built = kexecCmdline(cmdline.raw, cmdlineFile, update.name);
  if (!built.ok) return { ok: false, problem: built.problem };
  const files = [...used].map(([name, sha512]) => ({ name, sha512 }));
  return { ok: true, ...(signedBy === undefined ? {} : { signedBy }), ...(version === undefined ? {} : { version }), files, cmdline: built.cmdline };
}

/** Ask the plan's question until the answer means something, at most PROMPT_ATTEMPTS times. */
async function ask(system: System, log: Logger, plan: HeddlePlan, updates: readonly FoundUpdate[], promptSeconds: number, questions: HeddleQuestion[]) {
  for (let attempt = 1; attempt <= PROMPT_ATTEMPTS; attempt++) {
    const question = questionFor(plan, updates, promptSeconds);
    const answer = await system.askOnConsole(question, promptSeconds * 1000);
    questions.push({ question, ...(answer === undefined ? {} : { answer }) });
    const meaning = readAnswer(plan, updates, answer);
    if (meaning.kind !== "again") return meaning;
    log.warn(`${meaning.problem} (attempt ${attempt} of ${PROMPT_ATTEMPTS})`);
  }
  return { kind: "installed" as const, reason: `${plan.reason}; no usable answer in ${PROMPT_ATTEMPTS} attempts: booting the installed system` };
}

export async function runHeddleStage(
  system: System,
  log: Logger,
  cmdline: Cmdline,
  config: Config,
  bootext: BootextResult,
  devices: readonly BlockDevice[],
): Promise<HeddleResult> {
  const kexecFrom = cmdline.heddle.kexecFrom;
  const base = { updates: [] as FoundUpdate[], skipped: [] as SkippedEntry[], questions: [] as HeddleQuestion[], ...(kexecFrom === undefined ? {} : { kexecFrom }) };
  if (bootext.mountPoint === undefined) {
    const reason = kexecFrom === undefined ? "no BOOTEXT: no updates, booting the installed system" : `booted by kexec from update ${kexecFrom}`;
    log.info(reason);
    return { ...base, status: kexecFrom === undefined ? "installed" : "booted-by-kexec", reason };
  }
  const dir = `${bootext.mountPoint}/${config.heddle.updates_dir}`;
  const { updates, skipped } = await listUpdates(system, dir, config);
  const listed = { ...base, updatesDir: dir, updates, skipped };
  for (const entry of skipped) log.warn(`${dir}/${entry.name} is skipped: ${entry.reason}`);
  log.info(updates.length === 0 ? `no updates in ${dir}` : `${updates.length} updates in ${dir}: ${updates.map(describeUpdate).join(", ")}`);

  const { plan, notes } = planHeddle(cmdline.heddle, updates);
  for (const note of notes) log.warn(note);
  let decision: Answer | HeddlePlan = plan;
  if (plan.kind === "ask-incomplete" || plan.kind === "ask-missing" || plan.kind === "choose") {
    log.info(`${plan.reason}: asking on the console`);
    decision = await ask(system, log, plan, updates, config.heddle.prompt_seconds, listed.questions);
  }
  if (decision.kind !== "kexec") {
    log.info(decision.reason);
    return { ...listed, status: kexecFrom === undefined ? "installed" : "booted-by-kexec", reason: decision.reason };
  }

  const chosenName = decision.update;
  const chosen = updates.find((update) => update.name === chosenName);
  // the plan and the answers only ever name updates the listing found
  if (chosen === undefined) throw new Error(`Cannot boot update ${chosenName}: it is not in ${dir}`);
  const picked = { ...listed, chosen: chosen.name };
  log.info(`${decision.reason}: checking update ${chosen.name}`);
  const verified = await verifyUpdate(system, log, dir, chosen, cmdline, config);
  if (!verified.ok) {
    const reason = `Cannot boot update ${chosen.name}: ${verified.problem}; booting the installed system`;
    log.error(reason);
    return { ...picked, status: "refused", reason };
  }
  const verification = {
    ...(verified.signedBy === undefined ? {} : { signedBy: verified.signedBy }),
    ...(verified.version === undefined ? {} : { version: verified.version }),
    files: verified.files,
  };
  const checked = { ...picked, verification, cmdline: verified.cmdline };
  const what = verified.signedBy === undefined ? "unsigned" : `version ${verified.version}, signed by ${verified.signedBy}`;

  try {
    await system.kexecLoad({ kernel: `${dir}/${chosen.name}/${FILES.kernel}`, initrd: `${dir}/${chosen.name}/${FILES.initrd}`, cmdline: verified.cmdline });
  } catch (error) {
    const reason = `Cannot boot update ${chosen.name}: kexec could not load its kernel: ${(error as Error).message}; booting the installed system`;
    log.error(reason);
    return { ...checked, status: "load-failed", reason };
  }
  // kexec does not sync or unmount: leave BOOTEXT clean, as the controller found it
  try {
    await system.unmount(bootext.mountPoint);
  } catch (error) {
    const reason = `Cannot boot update ${chosen.name}: BOOTEXT could not be unmounted before the kexec: ${(error as Error).message}; booting the installed system`;
    log.error(reason);
    return { ...checked, status: "exec-failed", reason };
  }
  log.info(`booting update ${chosen.name} (${what}) with kexec, command line: ${verified.cmdline}`);
  let failure = "it returned without booting";
  try {
    await system.kexecBoot();
  } catch (error) {
    failure = (error as Error).message;
  }
  const reason = `Cannot boot update ${chosen.name}: kexec --exec failed: ${failure}; booting the installed system`;
  log.error(reason);
  await remountBootext(system, log, bootext, devices);
  return { ...checked, status: "exec-failed", reason };
}

/** After a kexec that did not happen, BOOTEXT goes back where the later stages expect it. */
async function remountBootext(system: System, log: Logger, bootext: BootextResult, devices: readonly BlockDevice[]): Promise<void> {
  const device = devices.find((candidate) => candidate.device === bootext.device);
  if (bootext.mountPoint === undefined || device?.fsType === undefined) return;
  try {
    await system.mount({ kind: "filesystem", source: device.device, target: bootext.mountPoint, fsType: device.fsType, options: [bootext.readOnly ? "ro" : "rw"] });
  } catch (error) {
    log.error(`Cannot mount BOOTEXT (${device.device}) again after the failed kexec: ${(error as Error).message}; going on without its overmounts`);
  }
}
