// The machine's /etc/machine-id: kept on BOOTEXT, the same on every boot and
// across updates, put into the /etc tmpfs over the image's (empty, or a
// debootstrap leftover every machine would share). Whole boots over the fake.

import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { connectToNetwork, labMachine, systemImage } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import type { FakeSystem, Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

/** what debootstrap leaves in an image: one id for every machine that boots it */
const DEBOOTSTRAP_ID = "0123456789abcdef0123456789abcdef";
const KEPT_ID = "fedcba9876543210fedcba9876543210";

function slotWith(etcMachineId: string): Tree {
  return { "system.squashfs": { image: { ...systemImage("system-a"), "etc/machine-id": etcMachineId } } };
}

/** A lab machine whose image ships `etcMachineId`, with BOOTEXT holding `bootext`. */
function machine(bootext: Tree, options: { etcMachineId?: string; initramfsConfig?: Tree; labels?: string[] } = {}): FakeSystem {
  return labMachine({
    bootext,
    slots: { SYSFS: slotWith(options.etcMachineId ?? ""), BACKUPFS: slotWith(options.etcMachineId ?? "") },
    ...(options.initramfsConfig === undefined ? {} : { initramfsConfig: options.initramfsConfig }),
    ...(options.labels === undefined ? {} : { labels: options.labels }),
  });
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const { report } = await runBoot(fake, log);
  return { report, text: sink.text(), etc: fake.peek("/sysroot/etc/machine-id"), kept: fake.peek("/run/controller/bootext/machine-id") };
}

/** The same machine, booted again: its disks as the boot left them. */
function rebooted(fake: FakeSystem): FakeSystem {
  const next = labMachine({ labels: [] });
  for (const { device, tree } of fake.snapshotDevices()) next.addDevice(device, tree);
  return next;
}

describe("machine-id", () => {
  test("the first boot makes one and keeps it on BOOTEXT; every later boot puts the same one into /etc", async () => {
    const fake = machine({}, { etcMachineId: DEBOOTSTRAP_ID });
    const first = await boot(fake);
    const id = first.report.machineId?.id ?? "";
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(id).not.toBe(DEBOOTSTRAP_ID);
    expect(first.report.machineId).toEqual({ source: "generated", id, detail: `/etc/machine-id is ${id} (new, kept on BOOTEXT)` });
    expect(first.kept).toBe(`${id}\n`);
    expect(first.etc).toBe(`${id}\n`);
    expect(first.text).toContain(`made the machine-id ${id} and kept it in BOOTEXT/machine-id`);
    // the image's /etc is untouched: only the tmpfs over it holds the id
    expect(formatStatus(first.report)).toContain(`machine-id: /etc/machine-id is ${id} (new, kept on BOOTEXT)\n`);

    const second = await boot(rebooted(fake));
    expect(second.report.machineId).toEqual({ source: "bootext", id, detail: `/etc/machine-id is ${id} (kept on BOOTEXT)` });
    expect(second.etc).toBe(`${id}\n`);
    expect(second.text).toContain(`controller: mounts: /etc/machine-id is ${id} (kept on BOOTEXT)`);
  });

  test("an update switches the system, not the identity", async () => {
    const update = { "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` };
    const fake = connectToNetwork(
      labMachine({ bootext: { ...update, "machine-id": `${KEPT_ID}\n` }, slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) } }),
    );
    publish(fake, { version: "2.0" });
    const { report, etc } = await boot(fake);
    expect(report.update.switched).toBeDefined();
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.machineId?.source).toBe("bootext");
    expect(etc).toBe(`${KEPT_ID}\n`);
  });

  test("something on BOOTEXT that is not a machine-id is said and replaced", async () => {
    for (const bad of ["not an id\n", `${KEPT_ID.toUpperCase()}\n`, `${"0".repeat(32)}\n`, `${KEPT_ID}${KEPT_ID}\n`]) {
      const { report, text, kept, etc } = await boot(machine({ "machine-id": bad }));
      const id = report.machineId?.id ?? "";
      expect(report.machineId?.source).toBe("replaced");
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(kept).toBe(`${id}\n`);
      expect(etc).toBe(`${id}\n`);
      expect(text).toContain("WARNING: BOOTEXT/machine-id: it holds ");
      expect(text).toContain("; a new one replaces it");
    }
  });

  test("a read-only BOOTEXT: a kept id is used; none is written there, and without one the image's file stays", async () => {
    const readOnly = { "50-ro.toml": "[bootext]\nread_only = true\n" };
    const kept = await boot(machine({ "machine-id": `${KEPT_ID}\n` }, { initramfsConfig: readOnly }));
    expect(kept.report.machineId?.source).toBe("bootext");
    expect(kept.etc).toBe(`${KEPT_ID}\n`);

    const none = await boot(machine({}, { initramfsConfig: readOnly }));
    expect(none.report.machineId).toEqual({
      source: "image",
      detail: "BOOTEXT/machine-id has none: BOOTEXT is mounted read-only (bootext.read_only); /etc/machine-id is the image's",
    });
    expect(none.kept).toBeUndefined();
    expect(none.etc).toBe("");
  });

  test("without BOOTEXT, or without a tmpfs on /etc, the image's /etc/machine-id stays and BOOTEXT is not written", async () => {
    const noBootext = await boot(machine({}, { labels: ["SYSFS", "BACKUPFS"] }));
    expect(noBootext.report.machineId).toEqual({ source: "image", detail: "no BOOTEXT is mounted to keep a machine-id on; /etc/machine-id is the image's" });
    expect(noBootext.etc).toBe("");

    const noEtcTmpfs = await boot(machine({}, { initramfsConfig: { "50-etc.toml": '[tmpfs."/etc"]\nenabled = false\n' } }));
    expect(noEtcTmpfs.report.machineId).toEqual({
      source: "image",
      detail: "/etc is not a tmpfs on this boot (tmpfs.\"/etc\" is not enabled); /etc/machine-id is the image's",
    });
    expect(noEtcTmpfs.kept).toBeUndefined();
    expect(noEtcTmpfs.text).toContain("WARNING: /etc is not a tmpfs on this boot");
  });

  test("a BOOTEXT that cannot be written: said, and the image's file stays rather than an id that would change every boot", async () => {
    const fake = machine({});
    const { log, sink } = memoryLogger();
    // the fake refuses writes under a read-only mount: BOOTEXT mounted rw, then flipped
    const realMount = fake.mount.bind(fake);
    fake.mount = async (request) => {
      await realMount(request);
      if (request.target === "/run/controller/bootext") await fake.remount(request.target, true);
    };
    const { report } = await runBoot(fake, log);
    expect(report.machineId?.source).toBe("image");
    expect(report.machineId?.detail).toStartWith("Cannot write BOOTEXT/machine-id: EROFS");
    expect(fake.peek("/sysroot/etc/machine-id")).toBe("");
    expect(sink.text()).toContain("WARNING: Cannot write BOOTEXT/machine-id");
  });
});
