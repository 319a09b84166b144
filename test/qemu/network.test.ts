// The network stage's pieces in the initramfs images scripts/build-initramfs
// made: the files the dracut module installs for it, and busybox udhcpc with
// the module's script getting a lease from QEMU's DHCP server on a real kernel,
// in dracut's shell (rd.break=pre-mount) of each flavour. The lease file it
// writes is read back with the controller's own parser. QEMU's restricted
// network sends no router or DNS server, so the script also gets a lease with
// them by hand, as udhcpc would hand it over. Then `controller boot` itself
// with an update server configured: with a NIC the network stage gets its
// lease, without one it gives up at timeouts.network_seconds and the local
// system boots.

import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { BootReport } from "../../controller/boot/report.ts";
import { parseLease } from "../../controller/plans/dhcp-lease.ts";
import { NETWORK_DIR, TOOLS, UDHCPC_SCRIPT } from "../../controller/system/paths.ts";
import { parseTestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import {
  ARTIFACTS,
  BOOT_TIMEOUT_MS,
  bootToTestSystem,
  initramfsCpio,
  requireArtifacts,
  SCENARIO_TIMEOUT_MS,
  scenarioDisks,
  vmOptions,
} from "./fixtures.ts";

// Listing a 95 MB initramfs takes seconds, more on a busy 2-core machine than bun's 5 s default.
setDefaultTimeout(60_000);

const HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const COMMAND_TIMEOUT_MS = 30_000;

beforeAll(requireArtifacts);

/** The lines of the console that `marker` starts, without it: how the guest hands the test a file. */
function markedLines(console: string, marker: string): string {
  return console
    .split("\n")
    .filter((line) => line.startsWith(marker))
    .map((line) => line.slice(marker.length))
    .join("\n");
}

describe.each(["shell", "systemd"] as const)("the %s initramfs", (flavour) => {
  test("holds busybox, the udhcpc script, e2label, the NIC drivers and the host's CA bundle", async () => {
    const listing = (await initramfsCpio(flavour, "-t -v")).split("\n");
    const entry = (path: string) => listing.find((line) => line.endsWith(` ${path}`) || line.includes(` ${path} -> `));
    expect(entry(TOOLS.busybox.slice(1))).toMatch(/^-rwxr-xr-x /);
    expect(entry(UDHCPC_SCRIPT.slice(1))).toMatch(/^-rwxr-xr-x /);
    expect(entry("usr/sbin/e2label")).toBeDefined();
    const modules = listing.filter((line) => /\/kernel\/drivers\/net\/.*\.ko(\.[a-z]+)?$/.test(line)).map((line) => line.replace(/^.*\/([^/]+)\.ko.*$/, "$1"));
    expect(modules).toEqual(expect.arrayContaining(["virtio_net", "e1000", "e1000e", "igb", "r8169"]));
    // byte for byte the build machine's bundle, at the path update.ca_bundle names by default
    const bundle = await initramfsCpio(flavour, `-i --to-stdout ${HOST_CA_BUNDLE.slice(1)}`);
    expect(bundle.length).toBeGreaterThan(0);
    expect(bundle).toBe(await Bun.file(HOST_CA_BUNDLE).text());
  });

  test(
    "busybox udhcpc with the module's script gets 10.0.2.15 from QEMU and records the lease; the script also sets a router and DNS",
    async () => {
      const options = {
        kernel: ARTIFACTS.kernel,
        initrd: ARTIFACTS.initramfs[flavour],
        append: "console=ttyS0 root=controller rd.break=pre-mount panic=-1",
        network: { hostPorts: [] },
      };
      await withVm(options, async (vm) => {
        // dracut's shell init prompts "pre-mount:/# "; its systemd flavour first has sulogin ask for Enter.
        const prompt = await vm.waitFor(/(?:pre-mount:\/# |Control-D to continue\): )$/, BOOT_TIMEOUT_MS);
        if (prompt[0].startsWith("Control-D")) {
          await vm.send("\n");
          await vm.waitFor(/# $/, COMMAND_TIMEOUT_MS);
        }
        const bb = TOOLS.busybox;
        // the first Ethernet interface, whatever udev named it in this flavour
        await vm.send(`for i in /sys/class/net/*; do [ "$(cat $i/type)" = 1 ] && IF=\${i##*/} && break; done; echo "@@IF $IF"\n`);
        const name = (await vm.waitFor(/^@@IF (\S+)$/m, COMMAND_TIMEOUT_MS))[1] ?? "";
        await vm.send(`${bb} udhcpc -i $IF -f -q -n -t 5 -T 2 -s ${UDHCPC_SCRIPT}; echo "udhcpc=$?"DONE\n`);
        expect((await vm.waitFor(/udhcpc=(\d+)DONE/, COMMAND_TIMEOUT_MS))[1]).toBe("0");
        await vm.send(
          `${bb} sed 's/^/@@LEASE /' ${NETWORK_DIR}/$IF.lease; ${bb} ip -4 addr show dev $IF | ${bb} sed 's/^/@@ADDR /'; ` +
            `${bb} ip route | ${bb} sed 's/^/@@ROUTE /'; ${bb} sed 's/^/@@RESOLV /' /etc/resolv.conf; echo "$((6*7))"SHOWN\n`,
        );
        await vm.waitFor("42SHOWN", COMMAND_TIMEOUT_MS);
        const text = vm.console();

        const parsed = parseLease(markedLines(text, "@@LEASE "));
        expect(parsed).toMatchObject({
          ok: true,
          // QEMU's restricted user network (restrict=on) offers no router and no DNS server
          lease: { interface: name, ip: "10.0.2.15", prefix: 24, routers: [], dns: [], serverId: "10.0.2.2", leaseSeconds: 86400 },
          skipped: [],
        });
        expect(markedLines(text, "@@ADDR ")).toContain("inet 10.0.2.15/24 brd 10.0.2.255");
        // the forwarded ports at 10.0.2.100 are on the link: no router needed
        expect(markedLines(text, "@@ROUTE ")).toMatch(new RegExp(`^10\\.0\\.2\\.0/24 dev ${name} `));
        expect(markedLines(text, "@@ROUTE ")).not.toContain("default");
        // without DNS servers in the lease the script leaves resolv.conf as it was: here, not there
        expect(text).toContain("sed: /etc/resolv.conf: No such file or directory");

        // what restricted DHCP never sends, handed to the script as udhcpc would: router, DNS, domain
        await vm.send(
          `${bb} env interface=$IF ip=10.0.2.15 subnet=255.255.255.0 router="10.0.2.2 10.0.2.9" dns="10.0.2.3 10.0.2.4" domain=lab.example ` +
            `${UDHCPC_SCRIPT} bound; ${bb} ip route | ${bb} sed 's/^/@@ROUTE2 /'; ${bb} sed 's/^/@@RESOLV2 /' /etc/resolv.conf; ` +
            `${bb} sed 's/^/@@LEASE2 /' ${NETWORK_DIR}/$IF.lease; echo "$((6*8))"SHOWN\n`,
        );
        await vm.waitFor("48SHOWN", COMMAND_TIMEOUT_MS);
        const handed = vm.console();
        expect(markedLines(handed, "@@ROUTE2 ")).toContain(`default via 10.0.2.2 dev ${name}`);
        expect(markedLines(handed, "@@RESOLV2 ")).toBe("search lab.example\nnameserver 10.0.2.3\nnameserver 10.0.2.4");
        expect(parseLease(markedLines(handed, "@@LEASE2 "))).toMatchObject({
          ok: true,
          lease: { ip: "10.0.2.15", prefix: 24, routers: ["10.0.2.2", "10.0.2.9"], dns: ["10.0.2.3", "10.0.2.4"], domain: "lab.example" },
        });

        // a minimal initramfs may have no poweroff; the kernel's sysrq always works
        await vm.send("echo o > /proc/sysrq-trigger\n");
        expect(await vm.waitForExit(COMMAND_TIMEOUT_MS)).toBe(0);
      });
    },
    SCENARIO_TIMEOUT_MS,
  );
});

/** Turns the network stage on; the unreachable server costs the check stage one second at most. */
const WITH_SERVER = "controller.update.servers=['http://10.0.2.100:8080/'] controller.timeouts.server_seconds=1";
const LEASE_FILE = `${NETWORK_DIR}/eth0.lease`;

test(
  "controller boot on the systemd initrd with an update server: the network stage gets its lease, the lease file moves into the booted system",
  async () => {
    const disks = await scenarioDisks();
    const options = vmOptions({ flavour: "systemd", disk: disks.standard, append: `${WITH_SERVER} test.cat=${LEASE_FILE}` });
    await withVm({ ...options, network: { hostPorts: [] } }, async (vm) => {
      await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
      const markers = parseTestMarkers(vm.console());
      expect(markers.imageId).toBe("system-a");
      const report = markers.report as BootReport;
      expect(report.update.network).toEqual({
        status: "up",
        interface: "eth0",
        address: "10.0.2.15/24",
        mac: "52:54:00:12:34:56",
        macs: ["52:54:00:12:34:56"],
        detail: expect.stringMatching(/^eth0 10\.0\.2\.15\/24 without a router in \d+(\.\d)? s$/),
      });
      expect(vm.console()).toMatch(/controller: network: lease: eth0 10\.0\.2\.15\/24 without a router in \d+(\.\d)? s\n/);
      const lease = markers.files.get(LEASE_FILE);
      expect(lease?.state).toBe("content");
      expect(parseLease(lease?.state === "content" ? lease.content : "")).toMatchObject({ ok: true, lease: { interface: "eth0", ip: "10.0.2.15", prefix: 24 } });
    });
  },
  SCENARIO_TIMEOUT_MS,
);

test(
  "controller boot on dracut's shell init with an update server but no NIC: no network after timeouts.network_seconds, said once, and the local system boots",
  async () => {
    const disks = await scenarioDisks();
    const append = `${WITH_SERVER} controller.timeouts.network_seconds=3`;
    await bootToTestSystem({ flavour: "shell", disk: disks.standard, append }, ({ markers, console }) => {
      expect(markers.imageId).toBe("system-a");
      const report = markers.report as BootReport;
      expect(report.update.network).toMatchObject({ status: "down", macs: [], detail: "no Ethernet interface appeared" });
      const stage = report.stages.find((entry) => entry.stage === "network");
      expect(stage?.outcome).toBe("ok");
      expect(stage?.durationMs).toBeGreaterThanOrEqual(3000);
      expect(stage?.durationMs).toBeLessThanOrEqual(4000);
      const warnings = console.split("\n").filter((line) => line.includes("controller: network: WARNING:"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/No network after 3(\.\d)? s \(no Ethernet interface appeared\): booting the local system without an update check$/);
    }, "report");
  },
  SCENARIO_TIMEOUT_MS,
);
