import { describe, expect, test } from "bun:test";
import { parseLease, prefixOfNetmask } from "../../../controller/plans/dhcp-lease.ts";
import { leaseText } from "../../fake-machine.ts";

describe("lease files", () => {
  test("a lease as controller-udhcpc.sh writes it", () => {
    expect(parseLease(leaseText("eth0").replace("hostname=\n", "hostname=lab-07\n").replace("domain=\n", "domain=lab.example.org\n"))).toEqual({
      ok: true,
      lease: {
        interface: "eth0",
        ip: "10.0.2.15",
        prefix: 24,
        routers: ["10.0.2.2"],
        dns: ["10.0.2.3"],
        hostname: "lab-07",
        domain: "lab.example.org",
        serverId: "10.0.2.2",
        leaseSeconds: 86400,
      },
      skipped: [],
    });
  });

  test("bad lines, unknown keys, CRLF, repeated keys and odd values", () => {
    const text = [
      "# not a comment format the script writes",
      "",
      "interface=eth0\r",
      "   ",
      "garbage",
      "=10.0.2.99",
      "IP=10.0.2.98",
      "future_key=whatever",
      "ip=10.0.2.14",
      "ip=10.0.2.15",
      "subnet=255.0.255.0",
      "router= 10.0.2.2   10.0.2.3 ",
      "dns=10.0.2.3 nameserver.example",
      "hostname=lab_07",
      "domain=a.example b.example",
      "lease=forever",
      "serverid=",
    ].join("\n");
    const parsed = parseLease(text);
    expect(parsed).toEqual({
      ok: true,
      lease: { interface: "eth0", ip: "10.0.2.15", prefix: 32, routers: ["10.0.2.2", "10.0.2.3"], dns: ["10.0.2.3"], domain: "a.example b.example" },
      skipped: [
        'line 1: expected KEY=VALUE, got "# not a comment format the script writes"',
        'line 5: expected KEY=VALUE, got "garbage"',
        'line 6: expected KEY=VALUE, got "=10.0.2.99"',
        'line 7: expected KEY=VALUE, got "IP=10.0.2.98"',
        'subnet: got "255.0.255.0", expected a netmask such as 255.255.255.0',
        'hostname: got "lab_07", expected a host name such as lab-07',
        'lease: got "forever", expected a number of seconds',
        'dns: got "nameserver.example", expected an IPv4 address',
      ],
    });
  });

  test.each([
    ["", "Cannot use the lease: it names no interface, expected a line interface=NAME"],
    ["ip=10.0.2.15\n", "Cannot use the lease: it names no interface, expected a line interface=NAME"],
    ["interface=eth0\n", 'Cannot use the lease: got ip="", expected an IPv4 address such as 10.0.2.15'],
    ["interface=eth0\nip=10.0.2\n", 'Cannot use the lease: got ip="10.0.2", expected an IPv4 address such as 10.0.2.15'],
    ["interface=eth0\nip=10.0.2.256\n", 'Cannot use the lease: got ip="10.0.2.256", expected an IPv4 address such as 10.0.2.15'],
    ["\u0000\u00ff\ninterface=eth0\nip=010.0.2.15\n", 'Cannot use the lease: got ip="010.0.2.15", expected an IPv4 address such as 10.0.2.15'],
  ])("no lease in %j", (text, problem) => {
    expect(parseLease(text)).toEqual({ ok: false, problem });
  });

  test.each([
    ["255.255.255.0", 24],
    ["255.255.254.0", 23],
    ["255.255.255.255", 32],
    ["0.0.0.0", 0],
    ["128.0.0.0", 1],
    ["255.0.255.0", undefined],
    ["255.255.255.1", undefined],
    ["255.255.255", undefined],
    ["24", undefined],
    ["", undefined],
  ])("netmask %j has prefix %p", (mask, prefix) => {
    expect(prefixOfNetmask(mask)).toBe(prefix);
  });
});
