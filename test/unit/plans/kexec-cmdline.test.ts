import { describe, expect, test } from "bun:test";
import { editCmdline } from "../../../controller/config/cmdline.ts";
import { KERNEL_CMDLINE_MAX_BYTES, kexecCmdline } from "../../../controller/plans/kexec-cmdline.ts";

describe("kexecCmdline", () => {
  test("without a cmdline file: this boot's line without Heddle's flags, with the marker", () => {
    expect(kexecCmdline("console=ttyS0 root=controller heddle_update=/ heddle_fallback=1 quiet\n", undefined, "u2")).toEqual({
      ok: true,
      cmdline: "console=ttyS0 root=controller quiet rd.controller.kexec=u2",
    });
  });

  test("quotes are kept as written, and init's arguments after -- stay after the marker", () => {
    expect(kexecCmdline('root=controller dyndbg="file x +p"  heddle_boot=x -- single "a b"', undefined, "u2")).toEqual({
      ok: true,
      cmdline: 'root=controller dyndbg="file x +p" rd.controller.kexec=u2 -- single "a b"',
    });
  });

  test("with a cmdline file: its content (line breaks are spaces), Heddle's flags kept, any marker replaced by this one", () => {
    expect(kexecCmdline("root=controller heddle_update=u2", "console=ttyS0\nroot=controller heddle_update=/ rd.controller.kexec=old\n", "u2")).toEqual({
      ok: true,
      cmdline: "console=ttyS0 root=controller heddle_update=/ rd.controller.kexec=u2",
    });
  });

  test("an empty cmdline file or a line too long for the kernel is refused", () => {
    expect(kexecCmdline("root=controller", " \n", "u2")).toEqual({ ok: false, problem: "its cmdline file is empty: expected the kernel command line to boot it with" });
    const long = `root=controller ${"x".repeat(KERNEL_CMDLINE_MAX_BYTES)}`;
    expect(kexecCmdline(long, undefined, "u2")).toMatchObject({ ok: false, problem: expect.stringContaining("the kernel takes at most 2047") });
    const fits = "x".repeat(KERNEL_CMDLINE_MAX_BYTES - " rd.controller.kexec=u2".length);
    expect(kexecCmdline(fits, undefined, "u2")).toMatchObject({ ok: true });
  });

  test("editCmdline keeps an unterminated quote and an empty line as they are", () => {
    expect(editCmdline('a "b c', () => false, ["m"])).toBe('a "b c m');
    expect(editCmdline("", () => false, ["m"])).toBe("m");
    expect(editCmdline("  --  x", () => true, ["m"])).toBe("m --  x");
  });
});
