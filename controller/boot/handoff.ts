// Stage "handoff": choose the real init, tell dracut about it, and open the
// shell the kernel command line asked for. dracut itself then switches root
// and execs the init, in both of its flavours: the controller writes the init
// path where each one reads it (paths.ts HANDOFF_*), so dracut's clean-up
// (udev, plymouth, the systemd initrd's own units) runs as it always does.

import type { Cmdline } from "../config/cmdline.ts";
import { FALLBACK_INIT, type InitCandidate, initCandidates } from "../plans/init-candidates.ts";
import type { Logger } from "../system/log.ts";
import { resolveInRoot } from "../system/new-root-paths.ts";
import { HANDOFF_CMDLINE_PATH, HANDOFF_ENV_PATH, NEWROOT, RUN_DIR, TOOLS } from "../system/paths.ts";
import type { System } from "../system/system.ts";

export interface HandoffResult {
  readonly init: InitCandidate;
  /** candidates passed over, and why */
  readonly rejected: readonly { readonly candidate: InitCandidate; readonly reason: string }[];
  readonly shell?: { readonly exitStatus: number };
}

async function whyNotExecutable(system: System, path: string): Promise<string | undefined> {
  // systemd's EnvironmentFile splits an unquoted value at whitespace
  if (/\s/.test(path)) return "it contains whitespace";
  const resolved = await resolveInRoot(system, NEWROOT, path);
  if (resolved.status === "refused") return resolved.reason;
  if (resolved.status === "missing") return "it does not exist in the new root";
  if (resolved.type !== "file") return `it is a ${resolved.type}, not a program`;
  const info = await system.lstat(`${NEWROOT}${resolved.path}`);
  if (info === undefined || (info.mode & 0o111) === 0) return "it is not executable";
  return undefined;
}

export async function runHandoffStage(
  system: System,
  log: Logger,
  cmdline: Cmdline,
  configured: InitCandidate,
  saveReport: () => Promise<unknown>,
): Promise<HandoffResult> {
  const rejected: { candidate: InitCandidate; reason: string }[] = [];
  let init: InitCandidate | undefined;
  const candidates = initCandidates(cmdline, configured);
  for (const candidate of candidates) {
    const reason = await whyNotExecutable(system, candidate.path);
    if (reason === undefined) {
      init = candidate;
      break;
    }
    rejected.push({ candidate, reason });
    log.warn(`Cannot use ${candidate.path} (${candidate.source}) as init: ${reason}`);
  }
  if (init === undefined) {
    // dracut looks for an init itself and opens its emergency shell if it finds none
    init = candidates[0] ?? { path: FALLBACK_INIT, source: "fallback" };
    log.error(`no usable init in the new root; handing ${init.path} to dracut anyway`);
  }

  await system.mkdir(RUN_DIR);
  await system.writeText(HANDOFF_ENV_PATH, `CONTROLLER_INIT=${init.path}\n`);
  await system.mkdir(HANDOFF_CMDLINE_PATH.slice(0, HANDOFF_CMDLINE_PATH.lastIndexOf("/")));
  await system.writeText(HANDOFF_CMDLINE_PATH, `real_init=${init.path}\n`);
  log.info(`handing off to ${init.path} (${init.source})`);

  if (!cmdline.shell) return { init, rejected };
  await saveReport();
  log.info("opening a shell on the console as the kernel command line asks (shell); exit it to continue the boot");
  const exitStatus = await system.execOnConsole([TOOLS.shell, "-i"]);
  log.info(`the shell exited with status ${exitStatus}; continuing the boot`);
  return { init, rejected, shell: { exitStatus } };
}
