import { describe, expect, test } from "bun:test";
import {
  type BootEntriesState,
  type BootEntryStep,
  bootEntryFor,
  type KernelDirEntry,
  type KernelPair,
  pairHashes,
  pairId,
  planBootEntries,
} from "../../../controller/plans/boot-entries.ts";
import { KERNEL_SWITCH_CUT_POINTS } from "../../../controller/system/cut-points.ts";

const DIR = "/run/controller/bootext/Kernel";

function pair(release: string, k: string, i: string, from = "/sysroot"): KernelPair {
  return {
    release,
    kernel: { path: `/boot/vmlinuz-${release}`, size: 100, sha512: k.repeat(128) },
    initrd: { path: `/boot/initrd.img-${release}`, size: 200, sha512: i.repeat(128) },
    from,
  };
}

const K1 = pair("6.1.0-57-amd64", "1", "a", "/run/controller/slots/BACKUPFS/mnt");
const K2 = pair("6.1.0-58-amd64", "2", "b");
const K3 = pair("6.1.0-59-amd64", "3", "c");

// --- a tiny disk that carries out the steps, to cut them anywhere -----------------

type Node = { type: "dir"; children: Map<string, Node> } | { type: "file"; content: string } | { type: "link"; target: string };

function dirNode(): Node {
  return { type: "dir", children: new Map() };
}

type View = "linux" | "home" | "links-early";

function copyNode(node: Node): Node {
  return node.type === "dir" ? { type: "dir", children: new Map([...node.children].map(([name, child]) => [name, copyNode(child)])) } : { ...node };
}

class Disk {
  readonly root: Node = dirNode();
  /**
   * The tree as its home blocks hold it, which is what GRUB reads: it does not
   * replay the journal. A flush brings it up to date, and so does Linux's
   * mount after a cut (it replays the journal into the home blocks).
   */
  home: Node = dirNode();
  /** the content of every file a copy-verified reads */
  constructor(readonly sources: ReadonlyMap<string, string>) {}

  /**
   * A tree to read: as Linux sees it, the home blocks, or the home blocks with
   * Kernel/'s own block (its links) written home early: the kernel writes home
   * blocks after the journal commit in no set order.
   */
  tree(view: View): Node {
    if (view === "linux") return this.root;
    if (view === "home") return this.home;
    const mixed = copyNode(this.home);
    const kernel = this.get(DIR);
    let homeKernel: Node | undefined = mixed;
    for (const part of DIR.split("/").filter((part) => part !== "")) homeKernel = homeKernel?.type === "dir" ? homeKernel.children.get(part) : undefined;
    if (kernel?.type === "dir" && homeKernel?.type === "dir") {
      for (const [name, node] of homeKernel.children) if (node.type === "link") homeKernel.children.delete(name);
      for (const [name, node] of kernel.children) if (node.type === "link") homeKernel.children.set(name, { ...node });
    }
    return mixed;
  }

  /** Mounted by the next boot: the journal is replayed, home is the tree as Linux sees it. */
  replayJournal(): void {
    this.home = copyNode(this.root);
  }

  private parentAndName(path: string): [Map<string, Node>, string] {
    const parts = path.split("/").filter((part) => part !== "");
    const name = parts.pop();
    let node = this.root;
    for (const part of parts) {
      const next = node.type === "dir" ? node.children.get(part) : undefined;
      if (next === undefined || next.type !== "dir") throw new Error(`ENOENT: ${path}`);
      node = next;
    }
    if (node.type !== "dir" || name === undefined) throw new Error(`ENOTDIR: ${path}`);
    return [node.children, name];
  }

  get(path: string): Node | undefined {
    const [children, name] = this.parentAndName(path);
    return children.get(name);
  }

  put(path: string, node: Node): void {
    const [children, name] = this.parentAndName(path);
    children.set(name, node);
  }

  mkdirs(path: string): void {
    const parts = path.split("/").filter((part) => part !== "");
    let at = "";
    for (const part of parts) {
      at += `/${part}`;
      if (this.get(at) === undefined) this.put(at, dirNode());
    }
  }

  run(step: BootEntryStep): void {
    switch (step.op) {
      case "mkdir":
        if (this.get(step.path) !== undefined) throw new Error(`EEXIST: ${step.path}`);
        this.put(step.path, dirNode());
        return;
      case "remove": {
        const [children, name] = this.parentAndName(step.path);
        children.delete(name);
        return;
      }
      case "copy-verified": {
        const content = this.sources.get(step.from);
        if (content === undefined) throw new Error(`ENOENT: ${step.from}`);
        if (content !== step.sha512) throw new Error(`sha512 mismatch: ${step.from}`);
        this.put(step.to, { type: "file", content });
        return;
      }
      case "fsync":
        if (this.get(step.path) === undefined) throw new Error(`ENOENT: ${step.path}`);
        return;
      case "flush":
        if (this.get(step.path) === undefined) throw new Error(`ENOENT: ${step.path}`);
        this.replayJournal();
        return;
      case "rename": {
        const node = this.get(step.from);
        if (node === undefined) throw new Error(`ENOENT: ${step.from}`);
        const existing = this.get(step.to);
        // rename(2) replaces a file or link, or an empty folder; never a full one
        if (existing?.type === "dir" && existing.children.size > 0) throw new Error(`ENOTEMPTY: ${step.to}`);
        const [children, name] = this.parentAndName(step.from);
        children.delete(name);
        this.put(step.to, node);
        return;
      }
      case "symlink":
        if (this.get(step.path) !== undefined) throw new Error(`EEXIST: ${step.path}`);
        this.put(step.path, { type: "link", target: step.target });
        return;
    }
  }

  /** Follow a path inside Kernel/ as GRUB would (links relative to Kernel/), in the tree Linux sees or in the home blocks. */
  read(name: string, from: View = "linux"): string | undefined {
    return this.resolve(name, from)?.content;
  }

  /** Where a path inside Kernel/ leads, and the file there. */
  resolve(name: string, from: View): { path: string; content: string } | undefined {
    let path = `${DIR}/${name}`;
    for (let hops = 0; hops < 8; hops++) {
      const parts = path.split("/").filter((part) => part !== "");
      let resolved = "";
      let node: Node | undefined = this.tree(from);
      let relinked = false;
      for (const [index, part] of parts.entries()) {
        if (node?.type !== "dir") return undefined;
        node = node.children.get(part);
        if (node?.type === "link") {
          path = `${resolved}/${node.target}/${parts.slice(index + 1).join("/")}`;
          relinked = true;
          break;
        }
        resolved += `/${part}`;
      }
      if (!relinked) return node?.type === "file" ? { path, content: node.content } : undefined;
    }
    return undefined;
  }

  /** What the stage would see: Kernel/'s entries and pairs/'s, a pair whole when its two files match its name. */
  state(): BootEntriesState {
    const kernel = this.get(DIR);
    const entries = new Map<string, KernelDirEntry>();
    const pairs = new Map<string, "whole" | "broken">();
    if (kernel?.type !== "dir") return { entries, pairs };
    for (const [name, node] of kernel.children) {
      entries.set(name, node.type === "link" ? { type: "symlink", target: node.target } : { type: node.type === "dir" ? "directory" : "file" });
    }
    const folder = kernel.children.get("pairs");
    if (folder?.type === "dir") {
      for (const [id, node] of folder.children) {
        const k = node.type === "dir" ? node.children.get("vmlinuz") : undefined;
        const i = node.type === "dir" ? node.children.get("initrd.img") : undefined;
        const whole = k?.type === "file" && i?.type === "file" && id.endsWith(`-${k.content.slice(0, 16)}-${i.content.slice(0, 16)}`);
        pairs.set(id, whole ? "whole" : "broken");
      }
    }
    return { entries, pairs };
  }
}

function sourcesOf(...pairs: KernelPair[]): Map<string, string> {
  const sources = new Map<string, string>();
  for (const p of pairs) {
    sources.set(`${p.from}${p.kernel.path}`, p.kernel.sha512);
    sources.set(`${p.from}${p.initrd.path}`, p.initrd.sha512);
  }
  return sources;
}

/** A disk whose Kernel/ is what planBootEntries made for `active` and `recovery`. */
function diskWith(active: KernelPair | undefined, recovery?: KernelPair): Disk {
  const disk = new Disk(sourcesOf(K1, K2, K3));
  disk.mkdirs(DIR);
  if (active !== undefined) {
    for (const step of planBootEntries(DIR, disk.state(), active, recovery).steps) disk.run(step);
  }
  disk.replayJournal();
  return disk;
}

/**
 * Which pair a bootloader entry boots: "K2", or "broken" when kernel and initrd are not one pair, or undefined.
 * From the home blocks (what GRUB reads), a file Linux has removed since counts as broken: its blocks may hold other data now.
 */
function booted(disk: Disk, prefix: "active" | "recovery", from: View = "linux"): string | undefined {
  const freed = (name: string) => {
    const found = disk.resolve(name, from);
    return found !== undefined && disk.get(found.path)?.type !== "file";
  };
  if (from !== "linux" && (freed(`${prefix}-kernel`) || freed(`${prefix}-initrd`))) return "broken";
  const kernel = disk.read(`${prefix}-kernel`, from);
  const initrd = disk.read(`${prefix}-initrd`, from);
  if (kernel === undefined && initrd === undefined) return undefined;
  for (const [name, p] of [["K1", K1], ["K2", K2], ["K3", K3]] as const) {
    if (kernel === p.kernel.sha512 && initrd === p.initrd.sha512) return name;
  }
  return "broken";
}

/**
 * Run the plan, cut after every step, and see what GRUB would boot at each
 * cut, from the tree as Linux sees it and from the home blocks; then plan
 * again from each cut and finish: the result is always the goal.
 */
function cutEverywhere(before: () => Disk, active: KernelPair, recovery: KernelPair | undefined) {
  const plan = planBootEntries(DIR, before().state(), active, recovery);
  const seen: { cut: string; active: string | undefined; recovery: string | undefined; homeActive: string | undefined; linksEarlyActive: string | undefined }[] = [];
  for (let stop = 0; stop <= plan.steps.length; stop++) {
    const disk = before();
    for (const step of plan.steps.slice(0, stop)) disk.run(step);
    // GRUB reads the home blocks: what it boots there is never a mix nor freed blocks
    for (const view of ["home", "links-early"] as const) {
      expect(booted(disk, "active", view)).not.toBe("broken");
      expect(booted(disk, "recovery", view)).not.toBe("broken");
    }
    seen.push({
      cut: stop === 0 ? "(before)" : (plan.steps[stop - 1]?.cut ?? ""),
      active: booted(disk, "active"),
      recovery: booted(disk, "recovery"),
      homeActive: booted(disk, "active", "home"),
      linksEarlyActive: booted(disk, "active", "links-early"),
    });
    disk.replayJournal();
    // the next boot plans again from whatever the cut left, and finishes
    const again = planBootEntries(DIR, disk.state(), active, recovery);
    for (const step of again.steps) disk.run(step);
    expect(planBootEntries(DIR, disk.state(), active, recovery).steps).toEqual([]);
  }
  return { plan, seen };
}

describe("planBootEntries", () => {
  test("a first write on an empty Kernel/: the pair, the link, AnthillaOS's names; no recovery yet", () => {
    const disk = diskWith(undefined);
    const plan = planBootEntries(DIR, disk.state(), K2, undefined);
    const id = pairId(K2);
    expect(id).toBe("6.1.0-58-amd64-2222222222222222-bbbbbbbbbbbbbbbb");
    expect(plan.steps.map((step) => `${step.op} ${"path" in step ? step.path : `${step.from} → ${step.to}`}`.replaceAll(DIR, "K"))).toEqual([
      "mkdir K/pairs",
      "fsync K",
      `mkdir K/pairs/.${id}.tmp`,
      `copy-verified /sysroot/boot/vmlinuz-6.1.0-58-amd64 → K/pairs/.${id}.tmp/vmlinuz`,
      `fsync K/pairs/.${id}.tmp/vmlinuz`,
      `copy-verified /sysroot/boot/initrd.img-6.1.0-58-amd64 → K/pairs/.${id}.tmp/initrd.img`,
      `fsync K/pairs/.${id}.tmp/initrd.img`,
      `fsync K/pairs/.${id}.tmp`,
      `rename K/pairs/.${id}.tmp → K/pairs/${id}`,
      "fsync K/pairs",
      "flush K",
      "symlink K/.active-kernel.tmp",
      "rename K/.active-kernel.tmp → K/active-kernel",
      "symlink K/.active-initrd.tmp",
      "rename K/.active-initrd.tmp → K/active-initrd",
      "symlink K/.active.tmp",
      "rename K/.active.tmp → K/active",
      "fsync K",
      "flush K",
    ]);
    expect(plan.steps.filter((step) => step.cut !== undefined).map((step) => step.cut)).toEqual([
      "kernel-entry-pair-written",
      "kernel-entry-pair-renamed",
      "kernel-entry-active-switched",
      "kernel-entry-links-flushed",
    ]);
    expect(plan).toMatchObject({ active: id });
    expect(plan).not.toHaveProperty("recovery");
    for (const step of plan.steps) disk.run(step);
    expect(booted(disk, "active")).toBe("K2");
    expect(booted(disk, "recovery")).toBeUndefined();
  });

  test("an update names every cut point of BOOTEXT's entries, each once, in order; the copies carry the signed size and sha512", () => {
    const plan = planBootEntries(DIR, diskWith(K1, K3).state(), K2, K1);
    expect(plan.steps.flatMap((step) => (step.cut === undefined ? [] : [step.cut]))).toEqual(
      KERNEL_SWITCH_CUT_POINTS.filter((point) => point.startsWith("kernel-entry-")),
    );
    expect(plan.steps.filter((step) => step.op === "copy-verified")).toEqual([
      expect.objectContaining({ from: "/sysroot/boot/vmlinuz-6.1.0-58-amd64", size: 100, sha512: K2.kernel.sha512 }),
      expect.objectContaining({ from: "/sysroot/boot/initrd.img-6.1.0-58-amd64", size: 200, sha512: K2.initrd.sha512 }),
    ]);
  });

  test("nothing to do when the entries already are the goal", () => {
    const disk = diskWith(K2, K1);
    expect(planBootEntries(DIR, disk.state(), K2, K1)).toEqual({
      steps: [],
      active: pairId(K2),
      recovery: pairId(K1),
      reasons: [`BOOTEXT's entries already are active ${pairId(K2)}, recovery ${pairId(K1)}`],
    });
  });

  test("no recovery given: the pair that was active becomes the recovery pair", () => {
    const disk = diskWith(K1);
    const plan = planBootEntries(DIR, disk.state(), K2, undefined);
    expect(plan.recovery).toBe(pairId(K1));
    for (const step of plan.steps) disk.run(step);
    expect([booted(disk, "active"), booted(disk, "recovery")]).toEqual(["K2", "K1"]);
    // and the same active again keeps that recovery
    expect(planBootEntries(DIR, disk.state(), K2, undefined).steps).toEqual([]);
  });

  test("an update (K1 active → K2 active, K1 recovery): recovery is switched first, at every cut a whole pair boots", () => {
    const { plan, seen } = cutEverywhere(() => diskWith(K1, K3), K2, K1);
    const links = plan.steps.filter((step) => step.op === "rename" && !step.to.includes("pairs") && !step.to.includes("-")).map((step) => (step.op === "rename" ? step.to.slice(DIR.length + 1) : ""));
    expect(links).toEqual(["recovery", "active"]);
    for (const row of seen) {
      expect(["K1", "K2"]).toContain(row.active ?? "none");
      expect(["K1", "K2"]).toContain(row.homeActive ?? "none");
      expect(["K1", "K2"]).toContain(row.linksEarlyActive ?? "none");
      expect(row.recovery).not.toBe("broken");
    }
    expect(seen.at(0)).toMatchObject({ active: "K1", recovery: "K3" });
    expect(seen.at(-1)).toMatchObject({ active: "K2", recovery: "K1" });
    // K3, named by no link any more, goes last, after the links were flushed home
    expect(plan.steps.slice(-4)).toEqual([
      { op: "fsync", path: DIR },
      { op: "flush", path: DIR, cut: "kernel-entry-links-flushed" },
      { op: "remove", path: `${DIR}/pairs/${pairId(K3)}`, why: "no link names it any more" },
      { op: "fsync", path: `${DIR}/pairs` },
    ]);
  });

  test("a rollback (K2 active, K1 recovery → K1 active): active is switched first, the good pair is always named", () => {
    const { plan, seen } = cutEverywhere(() => diskWith(K2, K1), K1, K2);
    const links = plan.steps.filter((step) => step.op === "rename" && !step.to.includes("-")).map((step) => (step.op === "rename" ? step.to.slice(DIR.length + 1) : ""));
    expect(links).toEqual(["active", "recovery"]);
    // no pair is copied: both are on BOOTEXT
    expect(plan.steps.some((step) => step.op === "copy-verified")).toBe(false);
    for (const row of seen) expect([row.active, row.recovery]).toContain("K1");
    expect(seen.at(-1)).toMatchObject({ active: "K1", recovery: "K2" });
  });

  test("a rollback where the other slot has no kernel: K1 active, K2 kept as recovery", () => {
    const { seen } = cutEverywhere(() => diskWith(K2, K1), K1, undefined);
    expect(seen.at(-1)).toMatchObject({ active: "K1", recovery: "K2" });
  });

  test("both new (K3 active, K2 recovery over K1 / nothing): at every cut the old pair or a new one boots, never a mix", () => {
    const { seen } = cutEverywhere(() => diskWith(K1), K3, K2);
    for (const row of seen) {
      expect(row.active).not.toBe("broken");
      expect(row.recovery).not.toBe("broken");
      expect(["K1", "K3"]).toContain(row.active ?? "");
    }
    expect(seen.at(-1)).toMatchObject({ active: "K3", recovery: "K2" });
  });

  test("from an empty Kernel/, cut anywhere: nothing, or the whole new pair", () => {
    const { seen } = cutEverywhere(() => diskWith(undefined), K2, undefined);
    for (const row of seen) expect([undefined, "K2"]).toContain(row.active);
  });

  test("leftovers of a cut-short write are removed first; a broken pair is written again", () => {
    const disk = diskWith(K1);
    disk.put(`${DIR}/.active.tmp`, { type: "link", target: "pairs/x" });
    disk.put(`${DIR}/pairs/.${pairId(K2)}.tmp`, dirNode());
    disk.put(`${DIR}/pairs/${pairId(K3)}`, dirNode());
    const plan = planBootEntries(DIR, disk.state(), K3, K1);
    expect(plan.steps.slice(0, 3)).toEqual([
      { op: "remove", path: `${DIR}/.active.tmp`, why: "left by a cut-short write" },
      { op: "remove", path: `${DIR}/pairs/.${pairId(K2)}.tmp`, why: "left by a cut-short write" },
      { op: "remove", path: `${DIR}/pairs/${pairId(K3)}`, why: "its files do not match the hashes its name carries" },
    ]);
    expect(plan.reasons).toContain(`the active pair ${pairId(K3)} is broken: written from /sysroot`);
    for (const step of plan.steps) disk.run(step);
    expect([booted(disk, "active"), booted(disk, "recovery")]).toEqual(["K3", "K1"]);
  });

  test("a pairs entry that is not a folder is replaced", () => {
    const disk = new Disk(sourcesOf(K2));
    disk.mkdirs(DIR);
    disk.put(`${DIR}/pairs`, { type: "file", content: "x" });
    const plan = planBootEntries(DIR, disk.state(), K2, undefined);
    expect(plan.steps[0]).toEqual({ op: "remove", path: `${DIR}/pairs`, why: "pairs is not a folder" });
    for (const step of plan.steps) disk.run(step);
    expect(booted(disk, "active")).toBe("K2");
  });

  test("a slot whose image is not what its record signs: the copy stops the plan before any link changes", () => {
    const disk = new Disk(new Map([...sourcesOf(K1, K2), [`/sysroot${K2.initrd.path}`, "tampered"]]));
    disk.mkdirs(DIR);
    for (const step of planBootEntries(DIR, disk.state(), K1, undefined).steps) disk.run(step);
    const plan = planBootEntries(DIR, disk.state(), K2, undefined);
    expect(() => {
      for (const step of plan.steps) disk.run(step);
    }).toThrow("sha512 mismatch");
    expect(booted(disk, "active")).toBe("K1");
  });
});

describe("pairHashes", () => {
  test("the two hash starts a pair's name carries; nothing for a name that is not a pair's", () => {
    expect(pairHashes(pairId(K2))).toEqual({ kernel: "2".repeat(16), initrd: "b".repeat(16) });
    expect(pairHashes(`.${pairId(K2)}.tmp`)).toBeUndefined();
    expect(pairHashes("6.1.0-58-amd64-2222-bbbb")).toBeUndefined();
    expect(pairHashes(`-${"2".repeat(16)}-${"b".repeat(16)}`)).toBeUndefined();
  });
});

describe("bootEntryFor: the kernel-switch's view of BOOTEXT", () => {
  test("none, another kernel's, the slot's", () => {
    expect(bootEntryFor(diskWith(undefined).state(), K2)).toEqual({ exists: false });
    expect(bootEntryFor(diskWith(K1).state(), K2)).toEqual({ exists: true, matchesSlot: false });
    expect(bootEntryFor(diskWith(K2, K1).state(), K2)).toEqual({ exists: true, matchesSlot: true });
    expect(bootEntryFor(diskWith(K2).state(), undefined)).toEqual({ exists: true, matchesSlot: false });
  });
  test("an active link to a broken pair, or without AnthillaOS's names, is no entry", () => {
    const broken = diskWith(K2);
    broken.put(`${DIR}/pairs/${pairId(K2)}`, dirNode());
    expect(bootEntryFor(broken.state(), K2)).toEqual({ exists: false });
    const unnamed = diskWith(K2);
    unnamed.run({ op: "remove", path: `${DIR}/active-initrd`, why: "test" });
    expect(bootEntryFor(unnamed.state(), K2)).toEqual({ exists: false });
  });
});
