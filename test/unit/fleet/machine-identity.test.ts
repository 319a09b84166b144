// Who a report comes from (fleet/machine-identity.ts): what the booted
// system's files hold made into what the fleet server takes, and whatever
// they hold instead.

import { describe, expect, test } from "bun:test";
import { parseEnvelope } from "../../../controller/fleet/envelope.ts";
import { type IdentityFiles, machineIdentity, nicMacs, readIdentityFiles, sendableHostname, UNNAMED_HOST } from "../../../controller/fleet/machine-identity.ts";
import { lifecycleBody } from "../../../controller/fleet/outgoing-envelope.ts";
import { FakeSystem } from "../../fake-system.ts";
import { MACHINE_ID } from "../../fleet-envelopes.ts";

const FILES: IdentityFiles = {
  machineId: `${MACHINE_ID}\n`,
  nics: [
    { name: "lo", address: "00:00:00:00:00:00\n", hardware: false },
    { name: "eth0", address: "52:54:00:12:34:56\n", hardware: true },
  ],
  hostname: "lab-01\n",
};

/** The envelope of a mark-good with this identity passes the server's check. */
function serverTakes(files: IdentityFiles): boolean {
  const read = machineIdentity(files);
  return read.ok && parseEnvelope(new TextEncoder().encode(lifecycleBody("mark-good", read.machine, new Date(0)))).ok;
}

describe("machineIdentity", () => {
  test("the files as a well-kept machine has them: nothing to say", () => {
    expect(machineIdentity(FILES)).toEqual({ ok: true, machine: { machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01" }, notes: [] });
    expect(serverTakes(FILES)).toBe(true);
  });

  test("no machine-id, an empty one, one that is not 32 lowercase hex digits: no identity, and why", () => {
    const cases: [string | undefined, string][] = [
      [undefined, "no readable file"],
      ["", "an empty file"],
      ["\n", "an empty file"],
      ["uninitialized\n", '"uninitialized"'],
      [MACHINE_ID.toUpperCase(), `"${MACHINE_ID.toUpperCase()}"`],
      [`${MACHINE_ID}0`, `"${MACHINE_ID}0"`],
      [MACHINE_ID.slice(1), `"${MACHINE_ID.slice(1)}"`],
      ["x".repeat(1000), `"${"x".repeat(40)}"`],
    ];
    for (const [machineId, got] of cases) {
      expect(machineIdentity({ ...FILES, machineId })).toEqual({
        ok: false,
        problem: `Cannot name this machine: expected a machine-id (32 lowercase hex digits) in /etc/machine-id, got ${got}`,
      });
    }
  });

  test("no NICs at all, only lo, only virtual interfaces: no MACs, which the server takes", () => {
    const virtual = [{ name: "lo", address: "00:00:00:00:00:00", hardware: false }, { name: "docker0", address: "02:42:ac:11:00:01", hardware: false }];
    for (const nics of [[], virtual.slice(0, 1), virtual]) {
      const read = machineIdentity({ ...FILES, nics });
      expect(read).toMatchObject({ ok: true, machine: { macs: [] }, notes: [] });
      expect(serverTakes({ ...FILES, nics })).toBe(true);
    }
  });

  test("more NICs than the server takes: the first 64, and a note", () => {
    const nics = Array.from({ length: 70 }, (_, index) => ({ name: `eth${index}`, address: `52:54:00:00:00:${index.toString(16).padStart(2, "0")}`, hardware: true }));
    const read = machineIdentity({ ...FILES, nics });
    expect(read.ok && read.machine.macs.length).toBe(64);
    expect(read.ok && read.machine.macs[63]).toBe("52:54:00:00:00:3f");
    expect(read.ok && read.notes).toEqual(["70 NICs have a MAC: only the first 64 are sent"]);
    expect(serverTakes({ ...FILES, nics })).toBe(true);
  });

  test("a host name that is not one is mended, and the note says so; an unreadable one is UNNAMED_HOST", () => {
    expect(machineIdentity({ ...FILES, hostname: "lab_01\n" })).toMatchObject({ ok: true, machine: { hostname: "lab-01" }, notes: ['the host name "lab_01" is not a valid host name: sent as "lab-01"'] });
    expect(machineIdentity({ ...FILES, hostname: undefined })).toMatchObject({
      ok: true,
      machine: { hostname: UNNAMED_HOST },
      notes: ['/proc/sys/kernel/hostname cannot be read: the host name is sent as "unnamed"'],
    });
    for (const hostname of ["lab_01", "", "(none)", "-", "a..b", `${"x".repeat(100)}.lab`, "läb 01", "\u0000", "-lab", ".lab."]) {
      expect(serverTakes({ ...FILES, hostname })).toBe(true);
    }
  });
});

describe("sendableHostname", () => {
  test("a valid host name is left as it is", () => {
    for (const name of ["lab-01", "LAB-01", "lab-01.example.org", "1", "a-", "lab.-01"]) expect(sendableHostname(name)).toBe(name);
  });

  test("the rest, mended the same way every time", () => {
    const cases: [string, string][] = [
      ["lab_01", "lab-01"],
      ["  lab-01\n", "lab-01"],
      ["(none)", UNNAMED_HOST],
      ["", UNNAMED_HOST],
      ["---", UNNAMED_HOST],
      ["...", UNNAMED_HOST],
      ["-lab", "lab"],
      ["a..b", "a.b"],
      [".lab.", "lab"],
      ["läb 01", "l-b-01"],
      [`${"x".repeat(100)}.lab`, `${"x".repeat(63)}.lab`],
    ];
    for (const [raw, sent] of cases) expect([raw, sendableHostname(raw)]).toEqual([raw, sent]);
  });
});

describe("nicMacs", () => {
  test("lowercase, in natural name order, each once; interfaces without hardware, all-zero, missing and malformed addresses left out", () => {
    const macs = nicMacs([
      { name: "eth10", address: "52:54:00:00:00:10", hardware: true },
      { name: "eth2", address: "52:54:00:AA:BB:CC\n", hardware: true },
      { name: "eth3", address: "52:54:00:aa:bb:cc", hardware: true },
      { name: "lo", address: "00:00:00:00:00:00", hardware: false },
      { name: "bond0", address: "52:54:00:aa:bb:cd", hardware: false },
      { name: "ifb0", address: "66:12:c9:90:88:2c", hardware: false },
      { name: "eth4", address: "00:00:00:00:00:00", hardware: true },
      { name: "wwan0", address: undefined, hardware: true },
      { name: "ib0", address: "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0e:f8:21", hardware: true },
      { name: "eth5", address: "", hardware: true },
    ]);
    expect(macs).toEqual(["52:54:00:aa:bb:cc", "52:54:00:00:00:10"]);
  });
});

describe("readIdentityFiles", () => {
  test("reads /etc/machine-id, every /sys/class/net/*/address and the kernel's host name; what is missing is undefined", async () => {
    const fake = new FakeSystem()
      .addTree("/etc", { "machine-id": `${MACHINE_ID}\n` })
      .addTree("/sys/class/net", { "lo/address": "00:00:00:00:00:00\n", "eth0/address": "52:54:00:12:34:56\n", "eth0/device": { symlink: "../../../0000:00:03.0" }, "sit0/type": "776\n" })
      .addTree("/proc/sys/kernel", { hostname: "lab-01\n" });
    const files = await readIdentityFiles(fake);
    expect({ ...files, nics: [...files.nics].sort((a, b) => a.name.localeCompare(b.name)) }).toEqual({
      machineId: `${MACHINE_ID}\n`,
      nics: [
        { name: "eth0", address: "52:54:00:12:34:56\n", hardware: true },
        { name: "lo", address: "00:00:00:00:00:00\n", hardware: false },
        { name: "sit0", address: undefined, hardware: false },
      ],
      hostname: "lab-01\n",
    });
    expect(await readIdentityFiles(new FakeSystem())).toEqual({ machineId: undefined, nics: [], hostname: undefined });
  });
});
