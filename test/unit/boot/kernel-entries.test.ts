// BOOTEXT's kernel entries and grubenv written over the fake system: the
// layouts an update, a rollback and a repair leave, a copy that does not match
// its signed sha512, BOOTEXT kept read-only, and a power cut at every cut point
// of the kernel switch, checked the way GRUB would boot the disk it leaves.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { armRebootIntoActive, type MountedBootext, readBootEntries, settleGrubenv, writeBootEntries } from "../../../controller/boot/kernel-entries.ts";
import { type KernelPair, pairId } from "../../../controller/plans/boot-entries.ts";
import { GRUBENV_BYTES, grubenv } from "../../../controller/plans/grub-config.ts";
import { type CutPoint, KERNEL_SWITCH_CUT_POINTS, NO_CUTS } from "../../../controller/system/cut-points.ts";
import { FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const MOUNT = "/run/controller/bootext";
const DEVICE = { device: "/dev/vda3", label: "BOOTEXT", fsType: "ext4" };
const GRUB_CFG = "# grub.cfg\n";

function sha512(text: string): string {
  return createHash("sha512").update(text).digest("hex");
}

/** A kernel and initrd in a slot's image, mounted at /images/NAME. */
function pair(name: string, release: string): KernelPair & { readonly files: Tree } {
  const kernel = `kernel of ${name} `.repeat(500);
  const initrd = `initrd of ${name} `.repeat(3000);
  return {
    release,
    kernel: { path: `/boot/vmlinuz-${release}`, size: kernel.length, sha512: sha512(kernel) },
    initrd: { path: `/boot/initrd.img-${release}`, size: initrd.length, sha512: sha512(initrd) },
    from: `/images/${name}`,
    files: { [`boot/vmlinuz-${release}`]: kernel, [`boot/initrd.img-${release}`]: initrd },
  };
}

const K1 = pair("K1", "6.1.0-57-amd64");
const K2 = pair("K2", "6.1.0-58-amd64");
const K3 = pair("K3", "6.1.0-59-amd64");
const PAIRS = { K1, K2, K3 } as const;

/** A machine with BOOTEXT holding `bootext`, mounted as the bootext stage does, and the three slots' images. */
async function machine(bootext: Tree, readOnly = true): Promise<{ fake: FakeSystem; bootext: MountedBootext }> {
  const fake = new FakeSystem().addDevice(DEVICE, bootext).addTree(MOUNT, {});
  for (const p of Object.values(PAIRS)) fake.addTree(p.from, p.files);
  fake.commandHandlers.set("fsfreeze", () => ({ stdout: "" }));
  await fake.mount({ kind: "filesystem", source: DEVICE.device, target: MOUNT, fsType: DEVICE.fsType, options: [readOnly ? "ro" : "rw"] });
  return { fake, bootext: { mountPoint: MOUNT, readOnly } };
}

/** BOOTEXT as writeBootEntries leaves it with `active` and `recovery`, from one with GRUB and nothing else. */
async function bootextWith(active?: KernelPair, recovery?: KernelPair): Promise<Tree> {
  const { fake, bootext } = await machine({ "grub/grub.cfg": GRUB_CFG });
  if (active !== undefined) await writeBootEntries(fake, memoryLogger().log, bootext, active, recovery, NO_CUTS);
  return disk(fake);
}

function disk(fake: FakeSystem): Tree {
  return fake.snapshotDevices().find((entry) => entry.device.device === DEVICE.device)?.tree ?? {};
}

/** Follows a path through a disk's links as GRUB does (relative to the link's folder); the file's text, or undefined. */
function follow(tree: Tree, path: string): string | undefined {
  let parts = path.split("/");
  for (let hops = 0; hops < 16; hops++) {
    let relinked = false;
    for (let index = 1; index <= parts.length; index++) {
      const entry = tree[parts.slice(0, index).join("/")];
      if (entry !== undefined && typeof entry === "object" && "symlink" in entry) {
        const folder = parts.slice(0, index - 1);
        parts = [...folder, ...entry.symlink.split("/"), ...parts.slice(index)].reduce<string[]>((out, part) => (part === ".." ? out.slice(0, -1) : [...out, part]), []);
        relinked = true;
        break;
      }
    }
    if (!relinked) {
      const entry = tree[parts.join("/")];
      return typeof entry === "string" ? entry : entry !== undefined && "text" in entry ? entry.text : undefined;
    }
  }
  return undefined;
}

/** What GRUB's entry boots on this disk: "K2", "broken" when the two files are not one pair, undefined when neither is there. */
function grubBoots(tree: Tree, entry: "active" | "recovery"): string | undefined {
  const kernel = follow(tree, `Kernel/${entry}-kernel`);
  const initrd = follow(tree, `Kernel/${entry}-initrd`);
  if (kernel === undefined && initrd === undefined) return undefined;
  const found = Object.entries(PAIRS).find(([, p]) => kernel === p.files[`boot/vmlinuz-${p.release}`] && initrd === p.files[`boot/initrd.img-${p.release}`]);
  return found?.[0] ?? "broken";
}

function remounts(fake: FakeSystem): string[] {
  return fake.commands.filter((argv) => argv[0] === "mount").map((argv) => argv.slice(2).join(" "));
}

describe("readBootEntries", () => {
  test("no Kernel/: nothing; after a write: the links and the pairs, each hashed whole", async () => {
    const empty = await machine({});
    expect(await readBootEntries(empty.fake, MOUNT)).toEqual({ entries: new Map(), pairs: new Map() });
    const { fake } = await machine(await bootextWith(K2, K1));
    const state = await readBootEntries(fake, MOUNT);
    expect(state.entries.get("active")).toEqual({ type: "symlink", target: `pairs/${pairId(K2)}` });
    expect(state.entries.get("recovery-initrd")).toEqual({ type: "symlink", target: "recovery/initrd.img" });
    expect(state.entries.get("pairs")).toEqual({ type: "directory" });
    expect([...state.pairs]).toEqual([
      [pairId(K1), "whole"],
      [pairId(K2), "whole"],
    ]);
    expect(fake.hashedRanges.map((range) => range.path.slice(MOUNT.length))).toEqual([
      `/Kernel/pairs/${pairId(K1)}/vmlinuz`,
      `/Kernel/pairs/${pairId(K1)}/initrd.img`,
      `/Kernel/pairs/${pairId(K2)}/vmlinuz`,
      `/Kernel/pairs/${pairId(K2)}/initrd.img`,
    ]);
  });

  test("a pair is broken when a file is missing, does not match its name, or the name is not a pair's", async () => {
    const tree: Record<string, Tree[string]> = { ...(await bootextWith(K2, K1)) };
    delete tree[`Kernel/pairs/${pairId(K1)}/initrd.img`];
    tree[`Kernel/pairs/${pairId(K2)}/vmlinuz`] = "something else";
    tree["Kernel/pairs/not-a-pair/vmlinuz"] = "x";
    tree[`Kernel/pairs/.${pairId(K3)}.tmp/vmlinuz`] = "x";
    const { fake } = await machine(tree);
    expect([...(await readBootEntries(fake, MOUNT)).pairs]).toEqual([
      [`.${pairId(K3)}.tmp`, "broken"],
      [pairId(K1), "broken"],
      [pairId(K2), "broken"],
      ["not-a-pair", "broken"],
    ]);
  });
});

describe("writeBootEntries", () => {
  test("a first write (no Kernel/): the pair copied, linked, GRUB's active entry boots it; BOOTEXT read-only again", async () => {
    const { fake, bootext } = await machine({ "grub/grub.cfg": GRUB_CFG });
    const { log, sink } = memoryLogger();
    const plan = await writeBootEntries(fake, log, bootext, K2, undefined, NO_CUTS);
    expect(plan.active).toBe(pairId(K2));
    expect(grubBoots(disk(fake), "active")).toBe("K2");
    expect(grubBoots(disk(fake), "recovery")).toBeUndefined();
    expect(remounts(fake)).toEqual([`remount,rw ${MOUNT}`, `remount,ro ${MOUNT}`]);
    expect(fake.mountAt(MOUNT)?.readOnly).toBe(true);
    // the journal flushed twice: the pair before it is linked, the links before anything is removed
    expect(fake.commands.filter((argv) => argv[0] === "fsfreeze")).toEqual([
      ["fsfreeze", "--freeze", MOUNT],
      ["fsfreeze", "--unfreeze", MOUNT],
      ["fsfreeze", "--freeze", MOUNT],
      ["fsfreeze", "--unfreeze", MOUNT],
    ]);
    expect(fake.syncedPaths).toContain(`${MOUNT}/Kernel/pairs/.${pairId(K2)}.tmp/initrd.img`);
    expect(sink.text()).toContain(`BOOTEXT kernel entries: the active pair ${pairId(K2)} is not on BOOTEXT: written from /images/K2`);
    expect(sink.text()).toContain("BOOTEXT kernel entries: AnthillaOS's active-kernel, active-initrd made");
    expect(sink.text()).toContain(`BOOTEXT kernel entries written: active ${pairId(K2)}`);
  });

  test("an update: the old active pair becomes recovery, the pair no link names any more is removed", async () => {
    const { fake, bootext } = await machine(await bootextWith(K1, K3));
    const plan = await writeBootEntries(fake, memoryLogger().log, bootext, K2, undefined, NO_CUTS);
    expect(plan).toMatchObject({ active: pairId(K2), recovery: pairId(K1) });
    const tree = disk(fake);
    expect([grubBoots(tree, "active"), grubBoots(tree, "recovery")]).toEqual(["K2", "K1"]);
    expect(Object.keys(tree).filter((path) => path.startsWith("Kernel/pairs/") && path.split("/").length === 3)).toEqual([`Kernel/pairs/${pairId(K1)}`, `Kernel/pairs/${pairId(K2)}`].sort());
  });

  test("a rollback: the recovery pair becomes active, nothing copied", async () => {
    const { fake, bootext } = await machine(await bootextWith(K2, K1));
    await writeBootEntries(fake, memoryLogger().log, bootext, K1, K2, NO_CUTS);
    const tree = disk(fake);
    expect([grubBoots(tree, "active"), grubBoots(tree, "recovery")]).toEqual(["K1", "K2"]);
    expect(fake.commands.some((argv) => argv[0] === "fsfreeze" && argv[1] === "--freeze")).toBe(true);
    // the two pairs were hashed to be found whole, never read to be copied
    expect(fake.hashedRanges.every((range) => range.path.startsWith(`${MOUNT}/Kernel/pairs/`))).toBe(true);
  });

  test("nothing to do: no remount, no write", async () => {
    const { fake, bootext } = await machine(await bootextWith(K2, K1));
    const plan = await writeBootEntries(fake, memoryLogger().log, bootext, K2, K1, NO_CUTS);
    expect(plan.steps).toEqual([]);
    expect(remounts(fake)).toEqual([]);
  });

  test("a broken pair is written again", async () => {
    const tree = { ...(await bootextWith(K2, K1)), [`Kernel/pairs/${pairId(K2)}/initrd.img`]: "half an initrd" };
    const { fake, bootext } = await machine(tree);
    expect(grubBoots(tree, "active")).toBe("broken");
    const { log, sink } = memoryLogger();
    await writeBootEntries(fake, log, bootext, K2, K1, NO_CUTS);
    expect([grubBoots(disk(fake), "active"), grubBoots(disk(fake), "recovery")]).toEqual(["K2", "K1"]);
    expect(sink.text()).toContain(`the active pair ${pairId(K2)} is broken: written from /images/K2`);
  });

  test("a copy whose sha512 is not the signed one stops the write: nothing linked, the partial pair gone, a clear message", async () => {
    const { fake, bootext } = await machine(await bootextWith(K1));
    const tampered = { ...K2, initrd: { ...K2.initrd, sha512: "0".repeat(128) } };
    const id = pairId(tampered);
    await expect(writeBootEntries(fake, memoryLogger().log, bootext, tampered, undefined, NO_CUTS)).rejects.toThrow(
      `Cannot copy /images/K2/boot/initrd.img-6.1.0-58-amd64 to ${MOUNT}/Kernel/pairs/.${id}.tmp/initrd.img: its sha512 is ${K2.initrd.sha512}, expected ${"0".repeat(128)} (the slot's image is not what its signed record says; nothing was linked)`,
    );
    const tree = disk(fake);
    expect([grubBoots(tree, "active"), grubBoots(tree, "recovery")]).toEqual(["K1", undefined]);
    expect(Object.keys(tree).filter((path) => path.includes(id))).toEqual([]);
    expect(fake.mountAt(MOUNT)?.readOnly).toBe(true);
  });

  test("a copy of another size stops it too, naming both sizes", async () => {
    const { fake, bootext } = await machine(await bootextWith(K1));
    const longer = { ...K2, kernel: { ...K2.kernel, size: K2.kernel.size + 1 } };
    await expect(writeBootEntries(fake, memoryLogger().log, bootext, longer, undefined, NO_CUTS)).rejects.toThrow(
      `it has ${K2.kernel.size} bytes, expected ${K2.kernel.size + 1}`,
    );
    const shorter = { ...K2, kernel: { ...K2.kernel, size: 10 } };
    await expect(writeBootEntries(fake, memoryLogger().log, bootext, shorter, undefined, NO_CUTS)).rejects.toThrow("it has more than 10 bytes, expected 10");
    expect(grubBoots(disk(fake), "active")).toBe("K1");
  });

  test("BOOTEXT kept read-write (bootext.read_only = false) is written without a remount", async () => {
    const { fake, bootext } = await machine({ "grub/grub.cfg": GRUB_CFG }, false);
    await writeBootEntries(fake, memoryLogger().log, bootext, K2, undefined, NO_CUTS);
    expect(remounts(fake)).toEqual([]);
    expect(grubBoots(disk(fake), "active")).toBe("K2");
  });

  test("a step that fails still leaves a read-only BOOTEXT read-only", async () => {
    const { fake, bootext } = await machine({ "grub/grub.cfg": GRUB_CFG });
    fake.commandHandlers.set("fsfreeze", () => {
      throw new Error("fsfreeze: cannot freeze");
    });
    await expect(writeBootEntries(fake, memoryLogger().log, bootext, K2, undefined, NO_CUTS)).rejects.toThrow("fsfreeze: cannot freeze");
    expect(fake.mountAt(MOUNT)?.readOnly).toBe(true);
  });
});

describe("grubenv", () => {
  test("armRebootIntoActive: flushed, then exactly grubenv()'s 1024 bytes (try active once, then recovery), flushed", async () => {
    const { fake, bootext } = await machine(await bootextWith(K2, K1));
    const reached: CutPoint[] = [];
    await armRebootIntoActive(fake, memoryLogger().log, bootext, { reach: async (point) => void reached.push(point) });
    const expected = grubenv({ saved_entry: "recovery", next_entry: "active" });
    expect(expected.ok && fake.peek(`${MOUNT}/grub/grubenv`) === expected.text).toBe(true);
    expect(fake.peek(`${MOUNT}/grub/grubenv`)?.length).toBe(GRUBENV_BYTES);
    expect(reached).toEqual(["grubenv-written"]);
    expect(fake.commands.filter((argv) => argv[0] === "fsfreeze" || argv[0] === "mount").map((argv) => argv.slice(1, 3).join(" "))).toEqual([
      "-o remount,rw",
      "--freeze /run/controller/bootext",
      "--unfreeze /run/controller/bootext",
      "--freeze /run/controller/bootext",
      "--unfreeze /run/controller/bootext",
      "-o remount,ro",
    ]);
  });

  test("armRebootIntoActive refuses a BOOTEXT without GRUB's folder", async () => {
    const { fake, bootext } = await machine({});
    await expect(armRebootIntoActive(fake, memoryLogger().log, bootext, NO_CUTS)).rejects.toThrow(
      `Cannot arm the reboot into BOOTEXT's active entry: expected GRUB's folder at ${MOUNT}/grub, got nothing`,
    );
  });

  test("settleGrubenv: the healthy system on the active pair makes active GRUB's lasting choice again; otherwise it is left", async () => {
    const armed = await machine(await bootextWith(K2, K1));
    await armRebootIntoActive(armed.fake, memoryLogger().log, armed.bootext, NO_CUTS);
    const tree = disk(armed.fake);

    const onRecovery = await machine(tree);
    expect(await settleGrubenv(onRecovery.fake, onRecovery.bootext, async () => ({ runs: pairId(K1) }))).toEqual({
      changed: false,
      detail: `${MOUNT}/grub/grubenv keeps saved_entry=recovery: ${MOUNT}/Kernel/active is ${pairId(K2)}, the booted slot's kernel is ${pairId(K1)}`,
    });
    const noKernel = await machine(tree);
    expect((await settleGrubenv(noKernel.fake, noKernel.bootext, async () => ({ notRunning: "the booted slot's image carries no kernel" }))).changed).toBe(false);
    // the active entry is the slot's kernel, but the system came up on recovery's: GRUB keeps booting recovery
    const onOtherKernel = await machine(tree);
    expect(await settleGrubenv(onOtherKernel.fake, onOtherKernel.bootext, async () => ({ notRunning: "the running kernel is K1, the slot's is K2: the system came up on another entry" }))).toEqual({
      changed: false,
      detail: `${MOUNT}/grub/grubenv keeps saved_entry=recovery: ${MOUNT}/Kernel/active is ${pairId(K2)}, the running kernel is K1, the slot's is K2: the system came up on another entry`,
    });

    const onActive = await machine(tree);
    expect((await settleGrubenv(onActive.fake, onActive.bootext, async () => ({ runs: pairId(K2) }))).changed).toBe(true);
    const expected = grubenv({ saved_entry: "active" });
    expect(expected.ok && onActive.fake.peek(`${MOUNT}/grub/grubenv`) === expected.text).toBe(true);
    expect(onActive.fake.mountAt(MOUNT)?.readOnly).toBe(true);
    // settled once, nothing more to do; and without grubenv the slot's record is not even asked
    expect((await settleGrubenv(onActive.fake, onActive.bootext, async () => ({ runs: pairId(K2) }))).changed).toBe(false);
    const noGrubenv = await machine(await bootextWith(K2, K1));
    expect(await settleGrubenv(noGrubenv.fake, noGrubenv.bootext, () => Promise.reject(new Error("asked")))).toEqual({
      changed: false,
      detail: `no ${MOUNT}/grub/grubenv: GRUB boots the active entry`,
    });
  });
});

describe("a power cut at every cut point of the kernel switch", () => {
  /** Runs an update's writes, reboot mode, snapshotting BOOTEXT at every cut point it reaches. */
  async function cutEverywhere(before: Tree, active: KernelPair, recovery: KernelPair | undefined) {
    const { fake, bootext } = await machine(before);
    const atCut = new Map<CutPoint, Tree>();
    const cuts = { reach: async (point: CutPoint) => void (atCut.has(point) ? undefined : atCut.set(point, disk(fake))) };
    await writeBootEntries(fake, memoryLogger().log, bootext, active, recovery, cuts);
    await armRebootIntoActive(fake, memoryLogger().log, bootext, cuts);
    return atCut;
  }

  /** The next boot, on the disk a cut left: it writes the entries again and ends where an uncut write ends. */
  async function finishes(tree: Tree, active: KernelPair, recovery: KernelPair | undefined): Promise<string[]> {
    const { fake, bootext } = await machine(tree);
    await writeBootEntries(fake, memoryLogger().log, bootext, active, recovery, NO_CUTS);
    const again = await writeBootEntries(fake, memoryLogger().log, bootext, active, recovery, NO_CUTS);
    expect(again.steps).toEqual([]);
    const done = disk(fake);
    return [grubBoots(done, "active") ?? "none", grubBoots(done, "recovery") ?? "none", String(Object.keys(done).filter((path) => path.includes(".tmp")).length)];
  }

  test("an update (K1 active, K3 recovery → K2 active, K1 recovery): every cut point reached, GRUB boots K1 or K2, the next boot finishes", async () => {
    const atCut = await cutEverywhere(await bootextWith(K1, K3), K2, undefined);
    expect([...atCut.keys()]).toEqual(KERNEL_SWITCH_CUT_POINTS.filter((point) => point !== "kernel-switch-attempt-written"));
    const rows = [...atCut].map(([point, tree]) => ({ point, active: grubBoots(tree, "active"), recovery: grubBoots(tree, "recovery") }));
    expect(rows).toEqual([
      { point: "kernel-entry-pair-written", active: "K1", recovery: "K3" },
      { point: "kernel-entry-pair-renamed", active: "K1", recovery: "K3" },
      { point: "kernel-entry-recovery-switched", active: "K1", recovery: "K1" },
      { point: "kernel-entry-active-switched", active: "K2", recovery: "K1" },
      { point: "kernel-entry-links-flushed", active: "K2", recovery: "K1" },
      { point: "grubenv-written", active: "K2", recovery: "K1" },
    ]);
    for (const [point, tree] of atCut) {
      expect({ point, after: await finishes(tree, K2, undefined) }).toEqual({ point, after: ["K2", "K1", "0"] });
    }
    // only from grubenv-written on does GRUB try the new pair once and then fall back
    const expected = grubenv({ saved_entry: "recovery", next_entry: "active" });
    expect([...atCut].map(([point, tree]) => [point, tree["grub/grubenv"] !== undefined])).toEqual([...atCut.keys()].map((point) => [point, point === "grubenv-written"]));
    const written = atCut.get("grubenv-written")?.["grub/grubenv"];
    expect(expected.ok && typeof written === "object" && "text" in written && written.text === expected.text).toBe(true);
  });

  test("a rollback (K2 active, K1 recovery → K1 active): active switched first, the good pair always named", async () => {
    const atCut = await cutEverywhere(await bootextWith(K2, K1), K1, K2);
    expect([...atCut].map(([point, tree]) => [point, grubBoots(tree, "active"), grubBoots(tree, "recovery")])).toEqual([
      // between the two switches both entries boot the good pair
      ["kernel-entry-active-switched", "K1", "K1"],
      ["kernel-entry-recovery-switched", "K1", "K2"],
      ["kernel-entry-links-flushed", "K1", "K2"],
      ["grubenv-written", "K1", "K2"],
    ]);
    for (const [point, tree] of atCut) expect({ point, after: await finishes(tree, K1, K2) }).toEqual({ point, after: ["K1", "K2", "0"] });
  });

  test("a first write (nothing on BOOTEXT yet): at every cut, no entry or the whole new pair", async () => {
    const atCut = await cutEverywhere(await bootextWith(), K2, undefined);
    expect([...atCut].map(([point, tree]) => [point, grubBoots(tree, "active")])).toEqual([
      ["kernel-entry-pair-written", undefined],
      ["kernel-entry-pair-renamed", undefined],
      ["kernel-entry-active-switched", "K2"],
      ["kernel-entry-links-flushed", "K2"],
      ["grubenv-written", "K2"],
    ]);
    for (const [point, tree] of atCut) expect({ point, after: await finishes(tree, K2, undefined) }).toEqual({ point, after: ["K2", "none", "0"] });
  });
});
