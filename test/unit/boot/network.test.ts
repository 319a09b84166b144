import { describe, expect, test } from "bun:test";
import { runNetworkStage } from "../../../controller/boot/network.ts";
import { type Config, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { CommandError } from "../../../controller/system/exec.ts";
import { NETWORK_DIR, TOOLS, UDHCPC_SCRIPT } from "../../../controller/system/paths.ts";
import type { ExecOptions } from "../../../controller/system/system.ts";
import { leaseText } from "../../fake-machine.ts";
import { FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

function configWith(networkSeconds: number, interfaces: string[] = []): Config {
  return {
    ...DEFAULT_CONFIG,
    timeouts: { ...DEFAULT_CONFIG.timeouts, network_seconds: networkSeconds },
    update: { ...DEFAULT_CONFIG.update, servers: ["http://10.0.2.100:8080/"] },
    network: { interfaces },
  };
}

const config = configWith(20);

/** /sys/class/net entries: an Ethernet interface, or another type. */
function nic(name: string, mac: string, type = "1"): Tree {
  return { [`${name}/type`]: `${type}\n`, [`${name}/address`]: `${mac}\n` };
}

const ETH0 = nic("eth0", "52:54:00:12:34:56");
const LO = nic("lo", "00:00:00:00:00:00", "772");

interface Lab {
  /** Interfaces whose carrier goes to 1 when their link is brought up. */
  readonly carrier?: readonly string[];
  /** Interface → lease file text that udhcpc's script writes after 1.2 s; an interface not here gets no lease. */
  readonly leases?: Readonly<Record<string, string>>;
}

const UDHCPC_STDERR = "udhcpc: started, v1.35.0\nudhcpc: broadcasting discover\nudhcpc: no lease, failing";

/**
 * Teaches the fake busybox: `ip link set IF up` gives carrier to the interfaces
 * that have a cable; udhcpc either writes the lease as the real script would,
 * or does what the real one does without a DHCP server: tries × pause seconds
 * of discovers, then exit status 1.
 */
function lab(fake: FakeSystem, { carrier = ["eth0", "eth1", "eth2"], leases = {} }: Lab = {}): FakeSystem {
  fake.commandHandlers.set(TOOLS.busybox, async (argv) => {
    const option = (flag: string) => argv[argv.indexOf(flag) + 1] ?? "";
    if (argv[1] === "ip") {
      const name = argv[4] ?? "";
      if (carrier.includes(name)) fake.addTree(`/sys/class/net/${name}`, { carrier: "1\n" });
      return { stdout: "" };
    }
    const name = option("-i");
    const lease = leases[name];
    if (lease === undefined) {
      await fake.sleep(Number(option("-t")) * Number(option("-T")) * 1000);
      throw new CommandError(argv, 1, UDHCPC_STDERR, "exit status 1");
    }
    await fake.sleep(1200);
    await fake.mkdir(NETWORK_DIR);
    await fake.writeText(`${NETWORK_DIR}/${name}.lease`, lease);
    return { stdout: "" };
  });
  return fake;
}

/** Records each command with the time it started and the time limit it got. */
function recordExecs(fake: FakeSystem): { argv: readonly string[]; atMs: number; timeoutMs: number | undefined }[] {
  const runs: { argv: readonly string[]; atMs: number; timeoutMs: number | undefined }[] = [];
  const exec = fake.exec.bind(fake);
  fake.exec = (argv: readonly string[], options?: ExecOptions) => {
    runs.push({ argv, atMs: fake.now(), timeoutMs: options?.timeoutMs });
    return exec(argv, options);
  };
  return runs;
}

function udhcpcInterfaces(fake: FakeSystem): string[] {
  return fake.commands.filter((argv) => argv[1] === "udhcpc").map((argv) => argv[argv.indexOf("-i") + 1] ?? "");
}

describe("network stage", () => {
  test("without update servers it does nothing at all, not even look at the interfaces", async () => {
    const fake = new FakeSystem().addTree("/sys/class/net", ETH0);
    const looked: string[] = [];
    fake.readdir = async (path) => {
      looked.push(path);
      return [];
    };
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, { ...config, update: { ...config.update, servers: [] } });
    expect(result).toEqual({ status: "not-needed", macs: [], detail: "no update server configured (update.servers is empty) and no net, ssh, lldpd, ssh_keys_url= or command_url= flag" });
    expect(looked).toEqual([]);
    expect(fake.commands).toEqual([]);
    expect(fake.now()).toBe(0);
    expect(sink.text()).toBe("controller: not needed: no update server configured (update.servers is empty) and no net, ssh, lldpd, ssh_keys_url= or command_url= flag");
  });

  test("one NIC: link up, one udhcpc with the whole budget, the lease in the result and the log", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", { ...LO, ...nic("eth0", "52:54:00:AB:CD:EF") }), {
      leases: { eth0: leaseText("eth0").replace("hostname=\n", "hostname=lab-07\n") },
    });
    const runs = recordExecs(fake);
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, config);
    expect(result).toEqual({
      status: "up",
      interface: "eth0",
      address: "10.0.2.15/24",
      mac: "52:54:00:ab:cd:ef",
      hostname: "lab-07",
      macs: ["52:54:00:ab:cd:ef"],
      detail: "eth0 10.0.2.15/24 via 10.0.2.2 in 1.2 s",
    });
    expect(fake.commands).toEqual([
      [TOOLS.busybox, "ip", "link", "set", "eth0", "up"],
      [TOOLS.busybox, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "2", "-s", UDHCPC_SCRIPT],
    ]);
    expect(runs[1]?.timeoutMs).toBe(20_000);
    const text = sink.text();
    expect(text).toContain("controller: interfaces seen after 0 s: eth0 (52:54:00:ab:cd:ef), skipped lo (loopback)");
    expect(text).toContain("controller: links up: eth0 (carrier)");
    expect(text).toContain("controller: eth0: asking for a DHCP lease (up to 20 s)");
    expect(text).toContain("controller: lease: eth0 10.0.2.15/24 via 10.0.2.2 in 1.2 s, DNS 10.0.2.3");
    expect(text).not.toContain("WARNING");
  });

  test.each([
    ["lab-08\n", "lab-08"],
    ["(none)\n", undefined],
    ["localhost\n", undefined],
    [undefined, undefined],
  ])("without a host name in the lease, the kernel's %j is used unless it is unset or localhost", async (kernel, expected) => {
    const fake = new FakeSystem().addTree("/sys/class/net", ETH0);
    if (kernel !== undefined) fake.addTree("/proc/sys/kernel", { hostname: kernel });
    lab(fake, { leases: { eth0: leaseText("eth0") } });
    const result = await runNetworkStage(fake, memoryLogger().log, config);
    expect(result.status).toBe("up");
    expect(result.hostname).toBe(expected);
    expect("hostname" in result).toBe(expected !== undefined);
  });

  test("network.interfaces picks and orders the interfaces; one that never appears is a warning naming it", async () => {
    const fake = new FakeSystem().addTree("/sys/class/net", {
      ...nic("eth0", "52:54:00:00:00:01"),
      ...nic("eth1", "52:54:00:00:00:02"),
      ...nic("eth2", "52:54:00:00:00:03"),
    });
    lab(fake, { leases: { eth0: leaseText("eth0") } });
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(20, ["eth2", "eth0", "eth9"]));
    expect(result).toMatchObject({ status: "up", interface: "eth0", mac: "52:54:00:00:00:01" });
    // every Ethernet interface counts for per-machine config, also those not used
    expect(result.macs).toEqual(["52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"]);
    expect(udhcpcInterfaces(fake)).toEqual(["eth2", "eth0"]);
    expect(fake.commands.some((argv) => argv.includes("eth1"))).toBe(false);
    expect(sink.text()).toContain("WARNING: network.interfaces names eth9, which did not appear as Ethernet interface within 2.3 s; using eth2, eth0");
  });

  test("network.interfaces naming only interfaces that never appear: down at the deadline, the others untouched", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", ETH0));
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(8, ["eth5", "eth6"]));
    expect(result).toEqual({ status: "down", macs: ["52:54:00:12:34:56"], detail: "none of network.interfaces (eth5, eth6) appeared" });
    expect(fake.commands).toEqual([]);
    expect(fake.now()).toBeGreaterThanOrEqual(8000);
    expect(fake.now()).toBeLessThanOrEqual(9000);
    expect(sink.text()).toContain("waiting up to 8 s (timeouts.network_seconds) for eth5 or eth6");
    expect(sink.text()).toContain("WARNING: network.interfaces names eth5, eth6, which did not appear as Ethernet interfaces within 8 s\n");
    expect(sink.text()).toContain("WARNING: No network after 8 s (none of network.interfaces (eth5, eth6) appeared): booting the local system without an update check");
  });

  test("lo, other link types and Wi-Fi are skipped; with nothing else the network is down", async () => {
    const others: Tree = { ...LO, ...nic("sit0", "00:00:00:00", "776"), ...nic("wlan0", "52:54:00:00:00:09"), "wlan0/phy80211": { symlink: "../../ieee80211/phy0" } };
    const fake = lab(new FakeSystem().addTree("/sys/class/net", { ...others, ...ETH0 }), { leases: { eth0: leaseText("eth0") } });
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, config);
    expect(result).toMatchObject({ status: "up", interface: "eth0", macs: ["52:54:00:12:34:56"] });
    expect(sink.text()).toContain("interfaces seen after 0 s: eth0 (52:54:00:12:34:56), skipped lo (loopback), skipped sit0 (type 776), skipped wlan0 (wireless)");
    expect(fake.commands.every((argv) => argv.includes("eth0"))).toBe(true);

    const alone = lab(new FakeSystem().addTree("/sys/class/net", others));
    expect(await runNetworkStage(alone, memoryLogger().log, configWith(5))).toMatchObject({ status: "down", macs: [] });
    expect(alone.commands.filter((argv) => argv[0] === TOOLS.busybox)).toEqual([]);
  });

  test("an interface that appears late is waited for and used as soon as it is there", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", LO), { leases: { eth0: leaseText("eth0") } });
    const sleep = fake.sleep.bind(fake);
    fake.sleep = async (ms) => {
      await sleep(ms);
      // udev loaded the NIC driver from its modalias
      if (fake.now() >= 3000) fake.addTree("/sys/class/net", ETH0);
    };
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, config);
    expect(result).toMatchObject({ status: "up", interface: "eth0" });
    expect(sink.text()).toContain("waiting up to 20 s (timeouts.network_seconds) for an Ethernet interface");
    expect(sink.text()).toMatch(/interfaces seen after (3|3\.\d|4|4\.\d) s: eth0/);
    expect(fake.now()).toBeLessThan(3000 + 2250 + 1200 + 1);
  });

  test("no interface at all: down at the deadline, with one warning that says why", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", LO).addTree("/proc/sys/kernel", { hostname: "lab-09\n" }));
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(10));
    expect(result).toEqual({ status: "down", hostname: "lab-09", macs: [], detail: "no Ethernet interface appeared" });
    expect(fake.now()).toBeGreaterThanOrEqual(10_000);
    expect(fake.now()).toBeLessThanOrEqual(11_000);
    expect(log.notices).toEqual([
      {
        level: "warn",
        scope: "",
        message: "No network after 10 s (no Ethernet interface appeared): booting the local system without an update check",
      },
    ]);
    expect(sink.text()).toContain("waiting up to 10 s (timeouts.network_seconds) for an Ethernet interface");
  });

  test("udhcpc failing: down, and the warning carries its stderr", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", ETH0));
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(10));
    expect(result.status).toBe("down");
    expect(result.detail).toStartWith("eth0: no DHCP lease: Cannot run `/usr/lib/controller/busybox udhcpc -i eth0 ");
    expect(result.detail).toContain("exit status 1: udhcpc: started, v1.35.0 | udhcpc: broadcasting discover | udhcpc: no lease, failing");
    expect(sink.text()).toContain(`WARNING: No network after 10 s (${result.detail}): booting the local system without an update check`);
    expect(fake.now()).toBeLessThanOrEqual(11_000);
  });

  test("udhcpc ending well without the script recording a lease is down, with what the script said", async () => {
    const fake = new FakeSystem().addTree("/sys/class/net", ETH0);
    fake.commandHandlers.set(TOOLS.busybox, (argv) => ({ stdout: argv[1] === "udhcpc" ? "controller-udhcpc: eth0: cannot add the address 10.0.2.15/24\n" : "" }));
    const result = await runNetworkStage(fake, memoryLogger().log, configWith(5));
    expect(result.detail).toBe(
      `eth0 (no carrier): udhcpc got a lease but ${UDHCPC_SCRIPT} did not record it in ${NETWORK_DIR}/eth0.lease: controller-udhcpc: eth0: cannot add the address 10.0.2.15/24`,
    );
  });

  test("a lease file for another interface or without an address is not a network", async () => {
    for (const [text, problem] of [
      [leaseText("eth1"), `Cannot use the lease in ${NETWORK_DIR}/eth0.lease: got interface=eth1, expected eth0`],
      ["interface=eth0\nip=\n", `${NETWORK_DIR}/eth0.lease: Cannot use the lease: got ip="", expected an IPv4 address such as 10.0.2.15`],
    ] as const) {
      const fake = lab(new FakeSystem().addTree("/sys/class/net", ETH0), { leases: { eth0: text } });
      const result = await runNetworkStage(fake, memoryLogger().log, configWith(5));
      expect(result).toMatchObject({ status: "down", detail: `eth0: ${problem}` });
    }
  });

  test("interfaces with carrier are asked first; the others still get their turn", async () => {
    const fake = new FakeSystem().addTree("/sys/class/net", { ...nic("eth0", "52:54:00:00:00:01"), ...nic("eth1", "52:54:00:00:00:02") });
    lab(fake, { carrier: ["eth1"], leases: {} });
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(20));
    expect(udhcpcInterfaces(fake)).toEqual(["eth1", "eth0"]);
    expect(sink.text()).toContain("links up: eth1 (carrier), eth0 (no carrier yet)");
    expect(result.detail).toContain("eth1: no DHCP lease");
    expect(result.detail).toContain("; eth0 (no carrier): no DHCP lease");
  });

  test("without carrier anywhere it waits a short grace, not the whole budget, before asking", async () => {
    const fake = lab(new FakeSystem().addTree("/sys/class/net", ETH0), { carrier: [], leases: { eth0: leaseText("eth0") } });
    const runs = recordExecs(fake);
    const result = await runNetworkStage(fake, memoryLogger().log, configWith(20));
    expect(result.status).toBe("up");
    expect(runs[1]?.atMs).toBe(3000);
    expect(runs[1]?.timeoutMs).toBe(17_000);
  });

  test("the deadline holds: every command's time limit ends by it, and the clock never passes it by more than a second", async () => {
    const names = ["eth0", "eth1", "eth2", "eth3"];
    const fake = new FakeSystem().addTree("/sys/class/net", Object.assign({}, ...names.map((name, i) => nic(name, `52:54:00:00:00:0${i}`))));
    lab(fake, { carrier: ["eth1"] });
    const runs = recordExecs(fake);
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, configWith(10));
    expect(result.status).toBe("down");
    expect(fake.now()).toBeLessThanOrEqual(11_000);
    for (const run of runs) expect(run.atMs + (run.timeoutMs ?? Number.POSITIVE_INFINITY)).toBeLessThanOrEqual(10_000);
    // a stuck udhcpc, killed at its time limit, cannot stretch it either
    const stuck = new FakeSystem().addTree("/sys/class/net", ETH0);
    lab(stuck);
    const exec = stuck.exec.bind(stuck);
    stuck.exec = async (argv, options) => {
      if (argv[1] !== "udhcpc") return exec(argv, options);
      await stuck.sleep(options?.timeoutMs ?? 3_600_000);
      throw new CommandError(argv, null, "udhcpc: sending select", `it took longer than ${(options?.timeoutMs ?? 0) / 1000} s and was killed`);
    };
    const stuckResult = await runNetworkStage(stuck, memoryLogger().log, configWith(10));
    expect(stuckResult.detail).toContain("was killed: udhcpc: sending select");
    expect(stuck.now()).toBeLessThanOrEqual(11_000);
    expect(sink.text()).toContain("No network after");
  });

  test("an interface whose link cannot be brought up is passed over with the reason", async () => {
    const fake = new FakeSystem().addTree("/sys/class/net", { ...nic("eth0", "52:54:00:00:00:01"), ...nic("eth1", "52:54:00:00:00:02") });
    lab(fake, { leases: { eth1: leaseText("eth1") } });
    const handler = fake.commandHandlers.get(TOOLS.busybox);
    fake.commandHandlers.set(TOOLS.busybox, (argv) => {
      if (argv[1] === "ip" && argv[4] === "eth0") throw new CommandError(argv, 2, "ip: SIOCSIFFLAGS: No such device", "exit status 2");
      return handler?.(argv) ?? { stdout: "" };
    });
    const result = await runNetworkStage(fake, memoryLogger().log, config);
    expect(result).toMatchObject({ status: "up", interface: "eth1" });
    expect(udhcpcInterfaces(fake)).toEqual(["eth1"]);
  });

  test("odd values in a lease are left out with a warning; the lease still counts", async () => {
    const odd = leaseText("eth0").replace("hostname=\n", "hostname=not a name\n").replace("router=10.0.2.2\n", "router=10.0.2.2 10.0.2.999\n");
    const fake = lab(new FakeSystem().addTree("/sys/class/net", ETH0), { leases: { eth0: odd } });
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, config);
    expect(result).toMatchObject({ status: "up", address: "10.0.2.15/24" });
    expect(result.hostname).toBeUndefined();
    expect(sink.text()).toContain(
      `WARNING: Ignoring parts of the DHCP lease in ${NETWORK_DIR}/eth0.lease: hostname: got "not a name", expected a host name such as lab-07; router: got "10.0.2.999", expected an IPv4 address`,
    );
  });
});
