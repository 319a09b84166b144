// The command line a Heddle update's kernel is kexec'd with. It carries
// rd.controller.kexec=NAME, so the new kernel's controller never kexecs again.

import { editCmdline } from "../config/cmdline.ts";
import { HEDDLE_UPDATE_FILES as FILES } from "../system/paths.ts";

/** Added to the kexec'd command line: that boot's controller sees it and does not kexec again. */
export const KEXEC_MARKER = "rd.controller.kexec";
/** Added beside the marker when the controller kexecs a slot's own kernel: which controller did it, VERSION+COMMIT, for the next one's report. */
export const KEXEC_BY = "rd.controller.kexec_by";
/** x86's COMMAND_LINE_SIZE is 2048 bytes with the terminating NUL: a longer line would be cut off silently. */
export const KERNEL_CMDLINE_MAX_BYTES = 2047;

export type KexecCmdline = { readonly ok: true; readonly cmdline: string } | { readonly ok: false; readonly problem: string };

/**
 * Pure: the kexec'd kernel's command line. The update's cmdline file when it
 * has one, else this boot's without Heddle's flags; either way with the marker.
 */
export function kexecCmdline(current: string, cmdlineFile: string | undefined, update: string): KexecCmdline {
  const marker = `${KEXEC_MARKER}=${update}`;
  const base = cmdlineFile ?? current;
  const drop = (name: string) => name === KEXEC_MARKER || (cmdlineFile === undefined && name.startsWith("heddle_"));
  const cmdline = editCmdline(base.replace(/\s+$/, ""), drop, [marker]);
  if (cmdlineFile !== undefined && cmdline === marker) return { ok: false, problem: `its ${FILES.cmdline} file is empty: expected the kernel command line to boot it with` };
  const bytes = Buffer.byteLength(cmdline);
  if (bytes > KERNEL_CMDLINE_MAX_BYTES) {
    return { ok: false, problem: `its command line would be ${bytes} bytes, the kernel takes at most ${KERNEL_CMDLINE_MAX_BYTES}` };
  }
  return { ok: true, cmdline };
}
