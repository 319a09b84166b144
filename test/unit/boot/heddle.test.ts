import { describe, expect, test } from "bun:test";
import { PROMPT_ATTEMPTS } from "../../../controller/boot/heddle.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { encodePublicKey, generateKeyPair, sha512Hex, signContent } from "../../../controller/update/signing.ts";
import { labMachine } from "../../fake-machine.ts";
import type { FakeSystem, Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const signer = generateKeyPair();
const TRUSTED = encodePublicKey(signer.publicKey);
const stranger = generateKeyPair();
const TRUST_CONFIG = { "50-keys.toml": `[update]\ntrusted_keys = ["${TRUSTED}"]\n` };

interface UpdateSpec {
  readonly kernel?: string;
  readonly initrd?: string;
  readonly cmdline?: string;
  readonly boot?: boolean;
  /** who signs SHA512SUMS: the trusted key (default), a stranger, or nobody */
  readonly signedBy?: "trusted" | "stranger" | "nobody";
  /** what the signature names: the update's own name and version 1.0 unless told */
  readonly signedFor?: { readonly name?: string; readonly version?: string; readonly expires?: string };
  /** SHA512SUMS as given instead of computed; null for none */
  readonly sums?: string | null;
  /** what replaces a file after SHA512SUMS was made */
  readonly tamper?: Readonly<Record<string, string>>;
}

function bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "latin1"));
}

function updateTree(name: string, spec: UpdateSpec = {}): Tree {
  const files: Record<string, string> = {
    kernel: spec.kernel ?? `kernel of ${name}`,
    initrd: spec.initrd ?? `initrd of ${name}`,
    ...(spec.cmdline === undefined ? {} : { cmdline: spec.cmdline }),
  };
  const sums = spec.sums === undefined ? Object.entries(files).map(([file, text]) => `${sha512Hex(bytes(text))}  ${file}\n`).join("") : spec.sums;
  const tree: Record<string, string> = {};
  for (const [file, text] of Object.entries({ ...files, ...spec.tamper })) tree[`updates/${name}/${file}`] = text;
  if (sums !== null) {
    tree[`updates/${name}/SHA512SUMS`] = sums;
    const key = spec.signedBy ?? "trusted";
    if (key !== "nobody") {
      const claims = {
        purpose: "heddle",
        target: spec.signedFor?.name ?? name,
        version: spec.signedFor?.version ?? "1.0",
        // the fake's wall clock starts at 2026-01-01
        expires: spec.signedFor?.expires ?? "2027-01-01T00:00:00.000Z",
      } as const;
      tree[`updates/${name}/SHA512SUMS.sig`] = signContent(bytes(sums), (key === "trusted" ? signer : stranger).secretKey, claims);
    }
  }
  if (spec.boot !== false) tree[`updates/${name}/BOOT`] = "";
  return tree;
}

function machine(cmdline: string, bootext: Tree, config: Tree = TRUST_CONFIG): FakeSystem {
  return labMachine({ cmdline: `root=controller console=ttyS0 ${cmdline}`, bootext, initramfsConfig: config });
}

const BOOTEXT_MOUNT = "/run/controller/bootext";
const STANDARD = { ...updateTree("update2"), ...updateTree("update10"), ...updateTree("update11", { boot: false }) };

/** Runs a boot; the fake's kexec --exec returns, so the boot then goes on with the installed system. */
async function boot(fake: FakeSystem) {
  const mountedAtExec: boolean[] = [];
  const kexecBoot = fake.kexecBoot.bind(fake);
  fake.kexecBoot = async () => {
    mountedAtExec.push(fake.mountAt(BOOTEXT_MOUNT) !== undefined);
    await kexecBoot();
  };
  const { log, sink } = memoryLogger();
  const result = await runBoot(fake, log);
  const heddle = result.report.heddle;
  if (heddle === undefined) throw new Error("the report has no heddle section");
  return { ...result, heddle, text: sink.text(), mountedAtExec };
}

describe("boots with Heddle updates", () => {
  test("no flag: update10 beats update2, verified, kexec'd once with the marker, BOOTEXT unmounted first", async () => {
    const fake = machine("heddle_fallback=0 quiet", STANDARD);
    const { heddle, text, mountedAtExec, report } = await boot(fake);
    expect(fake.kexecBooted).toEqual([
      {
        kernel: "/run/controller/bootext/updates/update10/kernel",
        initrd: "/run/controller/bootext/updates/update10/initrd",
        cmdline: "root=controller console=ttyS0 quiet rd.controller.kexec=update10",
      },
    ]);
    expect(mountedAtExec).toEqual([false]);
    expect(heddle.chosen).toBe("update10");
    expect(heddle.verification?.signedBy).toBe(TRUSTED);
    expect(heddle.verification?.files.map((f) => f.name)).toEqual(["kernel", "initrd"]);
    expect(heddle.updates.map((u) => [u.name, u.hasBoot, u.hasSignature])).toEqual([
      ["update2", true, true],
      ["update10", true, true],
      ["update11", false, true],
    ]);
    expect(text).toContain("controller: heddle: WARNING: update update11 has no BOOT file (its copy is not finished?): skipped");
    expect(heddle.verification?.version).toBe("1.0");
    expect(text).toContain(`controller: heddle: booting update update10 (version 1.0, signed by ${TRUSTED}) with kexec, command line: root=controller console=ttyS0 quiet rd.controller.kexec=update10`);
    // the fake's kexec returned: that is a failure, said so, and the installed system boots with BOOTEXT back
    expect(heddle.status).toBe("exec-failed");
    expect(text).toContain("controller: heddle: ERROR: Cannot boot update update10: kexec --exec failed: it returned without booting; booting the installed system");
    expect(report.outcome).toBe("handed-off");
    expect(report.boot.booted?.label).toBe("SYSFS");
    expect(report.decisions[0]).toStartWith("heddle: Cannot boot update update10");
    expect(fake.mounts.map((m) => m.target)).toContain(BOOTEXT_MOUNT);
  });

  test("the kexec'd boot (marker on its command line) never kexecs again, and its report says where it came from", async () => {
    const fake = machine("rd.controller.kexec=update10", STANDARD);
    const { heddle, report, text } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(heddle).toMatchObject({ status: "booted-by-kexec", kexecFrom: "update10", reason: "booted by kexec from update update10: no second kexec" });
    expect(heddle.updates).toHaveLength(3);
    expect(text).toContain("controller: heddle: booted by kexec from update update10: no second kexec");
    expect(report.decisions[0]).toBe("heddle: booted by kexec from update update10: no second kexec");
    expect(report.cmdline.warnings).toEqual([]);
  });

  test("heddle_boot=dist: no kexec, whatever is in updates/", async () => {
    const fake = machine("heddle_boot=dist", STANDARD);
    const { heddle, report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(heddle.status).toBe("installed");
    expect(report.boot.booted?.label).toBe("SYSFS");
  });

  test("heddle_update=NAME boots that one; its cmdline file is the new command line", async () => {
    const bootext = { ...STANDARD, ...updateTree("lab-1.0", { cmdline: "console=ttyS0 root=controller test.marker=lab\n" }) };
    const fake = machine("heddle_update=lab-1.0", bootext);
    const { heddle } = await boot(fake);
    expect(fake.kexecLoaded).toEqual({
      kernel: "/run/controller/bootext/updates/lab-1.0/kernel",
      initrd: "/run/controller/bootext/updates/lab-1.0/initrd",
      cmdline: "console=ttyS0 root=controller test.marker=lab rd.controller.kexec=lab-1.0",
    });
    expect(heddle.verification?.files.map((f) => f.name)).toEqual(["kernel", "initrd", "cmdline"]);
  });

  test("heddle_update=NAME without BOOT and heddle_fallback=1: the installed system, nothing asked", async () => {
    const fake = machine("heddle_update=update11 heddle_fallback=1", STANDARD);
    const { heddle } = await boot(fake);
    expect(fake.consoleQuestions).toEqual([]);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(heddle.reason).toBe("heddle_update=update11: it has no BOOT file, its copy may be incomplete; heddle_fallback=1: booting the installed system");
  });

  test("heddle_update=NAME without BOOT: asked; Enter boots the installed system, n boots it anyway", async () => {
    const enter = machine("heddle_update=update11", STANDARD);
    enter.consoleAnswers.push("");
    expect((await boot(enter)).heddle).toMatchObject({ status: "installed", questions: [{ question: expect.stringContaining("[Y/n]"), answer: "" }] });
    expect(enter.kexecLoaded).toBeUndefined();

    const anyway = machine("heddle_update=update11", STANDARD);
    anyway.consoleAnswers.push("what", "n");
    const { heddle, text } = await boot(anyway);
    expect(anyway.consoleQuestions).toHaveLength(2);
    expect(text).toContain('controller: heddle: WARNING: expected y, n or Enter, got "what" (attempt 1 of 3)');
    expect(heddle.chosen).toBe("update11");
    expect(anyway.kexecBooted.map((k) => k.kernel)).toEqual(["/run/controller/bootext/updates/update11/kernel"]);
  });

  test("no answer in time: the installed system after exactly prompt_seconds", async () => {
    const fake = machine("heddle_update=update11 controller.heddle.prompt_seconds=7", STANDARD);
    const before = fake.now();
    const { heddle } = await boot(fake);
    expect(heddle.reason).toBe("heddle_update=update11: it has no BOOT file, its copy may be incomplete; no answer in time: booting the installed system");
    expect(heddle.questions).toEqual([{ question: expect.stringContaining("boots in 7 s") }]);
    expect(fake.now() - before).toBeGreaterThanOrEqual(7000);
    expect(fake.now() - before).toBeLessThan(8000 + 30_000);
  });

  test("answers that never make sense: asked PROMPT_ATTEMPTS times, then the installed system", async () => {
    const fake = machine("heddle_update=/", STANDARD);
    fake.consoleAnswers.push("x", "y", "z", "update2");
    const { heddle } = await boot(fake);
    expect(fake.consoleQuestions).toHaveLength(PROMPT_ATTEMPTS);
    expect(heddle.reason).toBe("heddle_update=/: asking which of 3 updates to boot; no usable answer in 3 attempts: booting the installed system");
    expect(fake.kexecLoaded).toBeUndefined();
  });

  test("heddle_update=NAME that does not exist: asked to press Enter, then the installed system", async () => {
    const fake = machine("heddle_update=update99", STANDARD);
    fake.consoleAnswers.push("");
    const { heddle } = await boot(fake);
    expect(fake.consoleQuestions[0]).toContain("There is no update update99.");
    expect(heddle.status).toBe("installed");
  });

  test("heddle_update=/: the list on the console, a typed name boots it", async () => {
    const fake = machine("heddle_update=/", STANDARD);
    fake.consoleAnswers.push("update3", "update2");
    const { heddle } = await boot(fake);
    expect(fake.consoleQuestions[0]).toContain("  update2 (BOOT, signed, version 1.0)\n  update10 (BOOT, signed, version 1.0)\n  update11 (no BOOT, signed, version 1.0)\n");
    expect(heddle.questions.map((q) => q.answer)).toEqual(["update3", "update2"]);
    expect(fake.kexecLoaded?.kernel).toBe("/run/controller/bootext/updates/update2/kernel");
    expect(fake.kexecLoaded?.cmdline).toBe("root=controller console=ttyS0 rd.controller.kexec=update2");
  });

  test("heddle_update=/ with Enter or silence: the installed system", async () => {
    const fake = machine("heddle_update=/", STANDARD);
    fake.consoleAnswers.push("");
    expect((await boot(fake)).heddle.status).toBe("installed");
    const silent = machine("heddle_update=/", STANDARD);
    expect((await boot(silent)).heddle.reason).toContain("no answer in time");
    expect(silent.kexecLoaded).toBeUndefined();
  });
});

describe("updates that are refused: the installed system boots, and the message names the update and the file", () => {
  async function refused(bootext: Tree, config: Tree = TRUST_CONFIG, cmdline = "") {
    const fake = machine(cmdline, bootext, config);
    const result = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(result.heddle.status).toBe("refused");
    expect(result.report.boot.booted?.label).toBe("SYSFS");
    expect(result.text).toContain(`controller: heddle: ERROR: ${result.heddle.reason}`);
    return result.heddle.reason;
  }
  const dir = "/run/controller/bootext/updates/u1";

  test("unsigned (no SHA512SUMS.sig) with allow_unsigned = false, the default", async () => {
    expect(await refused(updateTree("u1", { signedBy: "nobody" }))).toBe(
      "Cannot boot update u1: it is not signed: no SHA512SUMS.sig, and heddle.allow_unsigned is false (sign it with `controller sign --key KEY --purpose heddle --version VERSION u1/SHA512SUMS`); booting the installed system",
    );
    expect(await refused(updateTree("u1", { sums: null }))).toContain("it is not signed");
  });

  test("signed by a key that is not trusted, or with no trusted keys at all", async () => {
    expect(await refused(updateTree("u1", { signedBy: "stranger" }))).toBe(
      `Cannot boot update u1: ${dir}/SHA512SUMS.sig: the signature is not valid for the trusted key (update.trusted_keys); booting the installed system`,
    );
    expect(await refused(updateTree("u1"), {})).toContain("there are no trusted keys to check the signature with");
  });

  test("a bad signature is refused even when unsigned updates are allowed", async () => {
    const allow = { ...TRUST_CONFIG, "60-heddle.toml": "[heddle]\nallow_unsigned = true\n" };
    expect(await refused(updateTree("u1", { signedBy: "stranger" }), allow)).toContain("the signature is not valid");
    expect(await refused({ ...updateTree("u1"), "updates/u1/SHA512SUMS.sig": "garbage" }, allow)).toContain('the signature file does not start with "controller-signature 2"');
  });

  test("an older signed update copied under a name that sorts last: its signature names its own folder, so it is refused", async () => {
    // update1, as signed, copied to updates/update99
    const copied = Object.fromEntries(Object.entries(updateTree("u1", { signedFor: { name: "update1", version: "1.0" } })).map(([path, text]) => [path.replace("updates/u1/", "updates/update99/"), text]));
    const fake = machine("", { ...updateTree("update2", { signedFor: { version: "2.0" } }), ...copied });
    const { heddle } = await boot(fake);
    expect(heddle.chosen).toBe("update99");
    expect(heddle.status).toBe("refused");
    expect(heddle.reason).toBe(
      "Cannot boot update update99: /run/controller/bootext/updates/update99/SHA512SUMS.sig: the signature file is for update update1, not update update99: " +
        "it signs another file or another place; if this is the right content, re-sign it with " +
        "`controller sign --key KEY --purpose heddle --version VERSION update99/SHA512SUMS` (update.trusted_keys); booting the installed system",
    );
    expect(fake.kexecLoaded).toBeUndefined();
    // the list shows the versions the signatures that verify name
    expect(heddle.updates.map((update) => [update.name, update.version])).toEqual([
      ["update2", "2.0"],
      ["update99", undefined],
    ]);
  });

  test("the version its signature names is in the report; a signature past its expiry or without a version is refused", async () => {
    const fake = machine("", updateTree("u1", { signedFor: { version: "3.4.1" } }));
    const { heddle } = await boot(fake);
    expect(heddle.verification?.version).toBe("3.4.1");
    expect(heddle.updates[0]?.version).toBe("3.4.1");
    expect(await refused(updateTree("u1", { signedFor: { expires: "2025-12-31T00:00:00.000Z" } }))).toBe(
      `Cannot boot update u1: ${dir}/SHA512SUMS.sig: the signature expired at 2025-12-31T00:00:00.000Z (it is now 2026-01-01T00:00:00.000Z): ` +
        "re-sign it with `controller sign --key KEY --purpose heddle --version VERSION u1/SHA512SUMS` (update.trusted_keys); booting the installed system",
    );
    const tree = updateTree("u1");
    const sums = tree["updates/u1/SHA512SUMS"] as string;
    const noVersion = signContent(bytes(sums), signer.secretKey, { purpose: "heddle", target: "u1", expires: "2027-01-01T00:00:00.000Z" });
    expect(await refused({ ...tree, "updates/u1/SHA512SUMS.sig": noVersion })).toBe(
      `Cannot boot update u1: ${dir}/SHA512SUMS.sig: the signature names no version: re-sign it with \`controller sign --key KEY --purpose heddle --version VERSION u1/SHA512SUMS\`; booting the installed system`,
    );
  });

  test("a signature without SHA512SUMS", async () => {
    const tree = { ...updateTree("u1"), "updates/u1/SHA512SUMS.sig": "x" };
    delete (tree as Record<string, unknown>)["updates/u1/SHA512SUMS"];
    expect(await refused(tree)).toBe("Cannot boot update u1: it has SHA512SUMS.sig but no SHA512SUMS for it to sign; booting the installed system");
  });

  test("a kernel changed after signing, a cmdline the sums do not list, a cmdline deleted", async () => {
    expect(await refused(updateTree("u1", { tamper: { kernel: "evil kernel" } }))).toMatch(
      /^Cannot boot update u1: \/run\/controller\/bootext\/updates\/u1\/SHA512SUMS: kernel has sha512 [0-9a-f]{16}…, SHA512SUMS expects [0-9a-f]{16}…; booting the installed system$/,
    );
    expect(await refused(updateTree("u1", { tamper: { cmdline: "init=/bin/sh" } }))).toContain("cmdline is not listed in SHA512SUMS");
    const deleted = updateTree("u1", { cmdline: "root=controller" });
    delete (deleted as Record<string, unknown>)["updates/u1/cmdline"];
    expect(await refused(deleted)).toContain("SHA512SUMS lists cmdline, but the update has no such file");
  });

  test("a malformed SHA512SUMS (signed all the same)", async () => {
    expect(await refused(updateTree("u1", { sums: "not a checksum line\n" }))).toContain(`${dir}/SHA512SUMS: line 1 is not "SHA512  NAME"`);
  });

  test("no kernel or no initrd", async () => {
    const tree = updateTree("u1");
    delete (tree as Record<string, unknown>)["updates/u1/initrd"];
    expect(await refused(tree)).toBe(`Cannot boot update u1: it has no initrd file (${dir}/initrd), expected a regular file; booting the installed system`);
    expect(await refused({ ...updateTree("u1"), "updates/u1/kernel": { symlink: "../u2/kernel" } })).toContain("it has no kernel file");
  });

  test("an empty cmdline file", async () => {
    expect(await refused(updateTree("u1", { cmdline: "\n" }))).toBe(
      "Cannot boot update u1: its cmdline file is empty: expected the kernel command line to boot it with; booting the installed system",
    );
  });
});

describe("unsigned updates allowed by config.d", () => {
  const allow = { ...TRUST_CONFIG, "60-heddle.toml": "[heddle]\nallow_unsigned = true\n" };

  test("boot with a warning; SHA512SUMS is still checked when there is one", async () => {
    const fake = machine("", updateTree("u1", { signedBy: "nobody" }), allow);
    const { heddle, text } = await boot(fake);
    expect(fake.kexecBooted).toHaveLength(1);
    expect(heddle.verification?.signedBy).toBeUndefined();
    expect(text).toContain("controller: heddle: WARNING: update u1 is not signed: booting it anyway because heddle.allow_unsigned is true");

    const tampered = machine("", updateTree("u1", { signedBy: "nobody", tamper: { initrd: "other" } }), allow);
    expect((await boot(tampered)).heddle.reason).toContain("initrd has sha512");
    expect(tampered.kexecLoaded).toBeUndefined();
  });

  test("without SHA512SUMS: booted, with a warning that nothing was checked", async () => {
    const fake = machine("", updateTree("u1", { sums: null }), allow);
    const { text } = await boot(fake);
    expect(fake.kexecBooted).toHaveLength(1);
    expect(text).toContain("controller: heddle: WARNING: update u1 has no SHA512SUMS: its files are not checked");
  });
});

describe("what else can go wrong", () => {
  test("a kernel kexec cannot load: a clear error with kexec's message, and the installed system boots", async () => {
    const fake = machine("", STANDARD);
    fake.kexecLoadFailure = "kexec_load failed: Invalid argument";
    const { heddle, report, text, mountedAtExec } = await boot(fake);
    expect(heddle.status).toBe("load-failed");
    expect(heddle.reason).toBe("Cannot boot update update10: kexec could not load its kernel: EXIT: kexec_load failed: Invalid argument; booting the installed system");
    expect(text).toContain(`ERROR: ${heddle.reason}`);
    expect(mountedAtExec).toEqual([]);
    expect(report.boot.booted?.label).toBe("SYSFS");
    expect(report.overmounts).toBeDefined();
    expect(fake.mountAt(BOOTEXT_MOUNT)).toBeDefined();
  });

  test("BOOTEXT that cannot be unmounted: no kexec", async () => {
    const fake = machine("", STANDARD);
    const unmount = fake.unmount.bind(fake);
    fake.unmount = async (target) => {
      if (target === BOOTEXT_MOUNT) throw new Error("umount: target is busy");
      await unmount(target);
    };
    const { heddle } = await boot(fake);
    expect(heddle.reason).toContain("BOOTEXT could not be unmounted before the kexec: umount: target is busy");
    expect(fake.kexecBooted).toEqual([]);
  });

  test("no BOOTEXT: no updates, the installed system", async () => {
    const fake = labMachine({ labels: ["SYSFS", "BACKUPFS"] });
    const { heddle } = await boot(fake);
    expect(heddle).toMatchObject({ status: "installed", reason: "no BOOTEXT: no updates, booting the installed system" });
  });

  test("entries that cannot be updates are skipped with a warning; another updates_dir is honoured", async () => {
    const bootext: Tree = {
      ...Object.fromEntries(Object.entries(updateTree("u1")).map(([path, text]) => [path.replace(/^updates\//, "heddle/"), text])),
      "heddle/README": "a file",
      "heddle/.partial/BOOT": "",
      "heddle/link": { symlink: "u1" },
    };
    const fake = machine("", bootext, { ...TRUST_CONFIG, "60-heddle.toml": '[heddle]\nupdates_dir = "heddle"\n' });
    const { heddle, text } = await boot(fake);
    expect(heddle.skipped.map((s) => s.name).sort()).toEqual([".partial", "README", "link"]);
    expect(text).toContain("WARNING: /run/controller/bootext/heddle/link is skipped: a symlink, expected a folder");
    expect(fake.kexecBooted.map((k) => k.kernel)).toEqual(["/run/controller/bootext/heddle/u1/kernel"]);
  });

  test("updates_dir that is a file fails the stage, not the boot", async () => {
    const fake = machine("", { updates: "not a folder" });
    const { heddle, report } = await boot(fake);
    expect(heddle.reason).toBe("the heddle stage failed: booting the installed system");
    expect(report.stages.find((s) => s.stage === "heddle")).toMatchObject({ outcome: "failed", error: expect.stringContaining("it is a file, expected a folder") });
    expect(report.boot.booted?.label).toBe("SYSFS");
  });

  test("bad [heddle] values in config.d name the key and what was expected", async () => {
    const fake = machine("", STANDARD, { ...TRUST_CONFIG, "60-heddle.toml": '[heddle]\nprompt_seconds = 0\nupdates_dir = "../x"\n' });
    const { report } = await boot(fake);
    expect(report.config.problems.join("\n")).toContain("key heddle.prompt_seconds: expected an integer from 1 to 3600, got 0");
    expect(report.config.problems.join("\n")).toContain('key heddle.updates_dir: expected a relative path such as "updates"');
    // the file is ignored as a whole: the defaults apply, and update10 still boots
    expect(fake.kexecBooted.map((k) => k.kernel)).toEqual(["/run/controller/bootext/updates/update10/kernel"]);
  });
});
