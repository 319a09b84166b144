// Alchemy Linux's kernel command line flags over the fake: net (a lease on
// every interface), ssh (dropbear, keys from config.d and ssh_keys_url=, the
// wait for `controller continue`), lldpd, and command_url= (a signed script
// run before the handoff), alone and in a whole boot.

import { describe, expect, test } from "bun:test";
import { COMMAND_OUTPUT_REPORT_BYTES, runCommandStage } from "../../../controller/boot/command-url.ts";
import { runNetworkStage } from "../../../controller/boot/network.ts";
import { fetchSignedContent } from "../../../controller/boot/remote-content.ts";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { runWaitStage } from "../../../controller/boot/services-wait.ts";
import { notInstalledMessage, parseInstalledServices, runServicesStage, stopServices } from "../../../controller/boot/services.ts";
import { parseCmdline } from "../../../controller/config/cmdline.ts";
import { checkConfigLayer, type Config, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { networkNeed } from "../../../controller/plans/network-need.ts";
import { signatureUrlOf } from "../../../controller/plans/signature-url.ts";
import { dropbearArgv } from "../../../controller/plans/ssh.ts";
import { CommandError } from "../../../controller/system/exec.ts";
import {
  COMMAND_OUTPUT,
  COMMAND_SCRIPT,
  CONTINUE_FILE,
  DROPBEAR_HOST_KEY,
  INSTALLED_SERVICES,
  NETWORK_DIR,
  ROOT_AUTHORIZED_KEYS,
  SYS_CLASS_NET,
  TOOLS,
} from "../../../controller/system/paths.ts";
import { encodePublicKey, generateKeyPair, type SignatureClaims, signContent } from "../../../controller/update/signing.ts";
import { labMachine } from "../../fake-machine.ts";
import { FakeSystem, textToBytes } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const SERVER = "http://10.0.2.100:8080";
const KEYS = generateKeyPair();
const TRUSTED = encodePublicKey(KEYS.publicKey);
const OTHER = generateKeyPair();
const POLICY = { trustedKeys: [TRUSTED], allowUnsigned: false };
const CONFIG_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIConfigKeyConfigKeyConfigKeyConfigKey00 admin@lab";
const URL_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUrlKeyUrlKeyUrlKeyUrlKeyUrlKeyUrlKe0 person@lab";
const NETWORK_UP = { status: "up" as const, interface: "eth0", address: "10.0.2.15/24", macs: [], detail: "lease" };

/**
 * Serves `text` at `url`, signed by `signer` unless it is "unsigned": for ssh
 * keys when the path ends in /keys, else for a command, for the URL's path,
 * until 2027 (the fake's wall clock is 2026-01-01), unless `signFor` says else.
 */
function serve(fake: FakeSystem, url: string, text: string, signer: "unsigned" | Uint8Array = KEYS.secretKey, signFor: Partial<SignatureClaims> = {}): void {
  const bytes = textToBytes(text);
  fake.http.set(url, { body: bytes });
  const path = new URL(url).pathname;
  const claims: SignatureClaims = { purpose: path.endsWith("/keys") ? "ssh-keys" : "command", target: path, expires: "2027-01-01T00:00:00.000Z", ...signFor };
  if (signer !== "unsigned") fake.http.set(signatureUrlOf(url), { body: textToBytes(signContent(bytes, signer, claims)) });
}

function configWith(changes: Partial<Config>): Config {
  return { ...DEFAULT_CONFIG, ...changes };
}

describe("the flags on the kernel command line", () => {
  test("are read, with every bad value a warning that names it and what was expected", () => {
    const good = parseCmdline(`net ssh lldpd=1 ssh_keys_url=${SERVER}/keys command_url=${SERVER}/run.sh`);
    expect(good).toMatchObject({ net: true, ssh: true, lldpd: true, sshKeysUrl: `${SERVER}/keys`, commandUrl: `${SERVER}/run.sh`, warnings: [] });

    const bad = parseCmdline("net=maybe ssh=0 command_url=ftp://lab/run.sh ssh_keys_url command_url=notaurl");
    expect(bad).toMatchObject({ net: false, ssh: false });
    expect(bad.commandUrl).toBeUndefined();
    expect(bad.sshKeysUrl).toBeUndefined();
    expect(bad.warnings).toEqual([
      "ssh_keys_url: expected an http:// or https:// URL; ignoring it",
      'command_url="notaurl": expected an http:// or https:// URL; ignoring it',
      'net="maybe": expected net alone or net= one of 1, yes, true, on, 0, no, false, off; using false',
    ]);
    expect(parseCmdline("command_url=file:///etc/passwd").warnings).toEqual([
      'command_url="file:///etc/passwd": expected an http:// or https:// URL; ignoring it',
    ]);
  });
});

describe("the [ssh] and [remote] config sections", () => {
  test("take good values and refuse bad ones, naming the key and what it expects", () => {
    expect(checkConfigLayer({ ssh: { authorized_keys: [CONFIG_KEY], wait_seconds: 30, port: 2222 }, remote: { allow_unsigned: true, command_timeout_seconds: 5 } }).ok).toBe(true);
    const bad = checkConfigLayer({
      ssh: { authorized_keys: ["ssh-ed25519", 'command="rm -rf /" ssh-ed25519 AAAA x', `${CONFIG_KEY}\nssh-rsa AAAA`], wait_seconds: 0, port: 65536 },
      remote: { allow_unsigned: "yes", command_timeout_seconds: -1, extra: 1 },
    });
    expect(bad.ok).toBe(false);
    const problems = bad.ok ? [] : bad.problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^key ssh\.authorized_keys\.0: expected a public key line such as .* got "ssh-ed25519"$/),
        expect.stringMatching(/^key ssh\.authorized_keys\.1: expected a public key line/),
        expect.stringMatching(/^key ssh\.authorized_keys\.2: expected a public key line/),
        "key ssh.wait_seconds: expected an integer from 1 to 86400, got 0",
        "key ssh.port: expected an integer from 1 to 65535, got 65536",
        'key remote.allow_unsigned: expected true or false, got "yes"',
        "key remote.command_timeout_seconds: expected an integer from 1 to 86400, got -1",
        "key remote.extra: unknown key; [remote] has allow_unsigned, command_timeout_seconds",
      ]),
    );
  });
});

/** eth0 and eth1 with cables; udhcpc gives each a lease, except those in `noDhcp`. */
function twoNics(noDhcp: readonly string[] = []): FakeSystem {
  const fake = new FakeSystem().addTree(SYS_CLASS_NET, {
    "eth0/type": "1\n",
    "eth0/address": "52:54:00:12:34:56\n",
    "eth1/type": "1\n",
    "eth1/address": "52:54:00:12:34:57\n",
  });
  fake.commandHandlers.set(TOOLS.busybox, async (argv) => {
    if (argv[1] === "ip") {
      fake.addTree(`${SYS_CLASS_NET}/${argv[4]}`, { carrier: "1\n" });
      return { stdout: "" };
    }
    const name = argv[argv.indexOf("-i") + 1] ?? "";
    if (noDhcp.includes(name)) {
      await fake.sleep(3000);
      throw new CommandError(argv, 1, "udhcpc: no lease, failing", "exit status 1");
    }
    await fake.sleep(1000);
    await fake.mkdir(NETWORK_DIR);
    const ip = name === "eth0" ? "10.0.2.15" : "10.0.3.15";
    await fake.writeText(`${NETWORK_DIR}/${name}.lease`, `interface=${name}\nip=${ip}\nsubnet=255.255.255.0\n`);
    return { stdout: "" };
  });
  return fake;
}

describe("net: a lease on every interface", () => {
  test("both NICs get their own lease, and the result lists each", async () => {
    const fake = twoNics();
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, DEFAULT_CONFIG, networkNeed(DEFAULT_CONFIG, parseCmdline("net")));
    expect(result).toMatchObject({ status: "up", interface: "eth0", address: "10.0.2.15/24", mac: "52:54:00:12:34:56" });
    expect(result.interfaces).toEqual([
      { name: "eth0", mac: "52:54:00:12:34:56", address: "10.0.2.15/24", detail: expect.stringContaining("10.0.2.15/24 without a router") },
      { name: "eth1", mac: "52:54:00:12:34:57", address: "10.0.3.15/24", detail: expect.stringContaining("10.0.3.15/24 without a router") },
    ]);
    expect(result.detail).toBe("2 of 2 interfaces up: eth0 10.0.2.15/24, eth1 10.0.3.15/24");
    expect(sink.text()).toContain("needed for net; a lease on every Ethernet interface (net)");
    // without net the first lease is enough: eth1 is not asked
    const first = twoNics();
    await runNetworkStage(first, memoryLogger().log, DEFAULT_CONFIG, networkNeed(DEFAULT_CONFIG, parseCmdline("ssh")));
    expect(first.commands.filter((argv) => argv[1] === "udhcpc").map((argv) => argv[argv.indexOf("-i") + 1])).toEqual(["eth0"]);
  });

  test("one NIC without DHCP is said and listed; the other still comes up; none at all is down", async () => {
    const fake = twoNics(["eth0"]);
    const { log, sink } = memoryLogger();
    const result = await runNetworkStage(fake, log, DEFAULT_CONFIG, networkNeed(DEFAULT_CONFIG, parseCmdline("net")));
    expect(result).toMatchObject({ status: "up", interface: "eth1", address: "10.0.3.15/24" });
    expect(result.interfaces?.[0]).toEqual({ name: "eth0", mac: "52:54:00:12:34:56", detail: expect.stringContaining("no DHCP lease") });
    expect(sink.text()).toContain("controller: WARNING: eth0: no DHCP lease");

    const none = await runNetworkStage(twoNics(["eth0", "eth1"]), memoryLogger().log, DEFAULT_CONFIG, { reasons: ["net"], everyInterface: true });
    expect(none.status).toBe("down");
    expect(none.interfaces?.map((outcome) => outcome.address)).toEqual([undefined, undefined]);
  });

  test("the deadline holds: an interface left without time is listed as such", async () => {
    const fake = twoNics(["eth0"]);
    const config = configWith({ timeouts: { ...DEFAULT_CONFIG.timeouts, network_seconds: 4 } });
    const result = await runNetworkStage(fake, memoryLogger().log, config, { reasons: ["net"], everyInterface: true });
    expect(fake.now()).toBeLessThanOrEqual(4000);
    expect(result.interfaces?.length).toBe(2);
  });
});

describe("signed remote content", () => {
  const url = `${SERVER}/run.sh`;
  const fetch = (fake: FakeSystem, policy = POLICY) => fetchSignedContent(fake, memoryLogger().log, DEFAULT_CONFIG, url, "command", 1000, policy);

  test("signed by a trusted key: taken, with the key", async () => {
    const fake = new FakeSystem();
    serve(fake, url, "echo hi\n");
    expect(await fetch(fake)).toEqual({ ok: true, bytes: textToBytes("echo hi\n"), signedBy: TRUSTED });
  });

  test("unsigned, signed by another key, signed over other bytes, or a garbled signature: refused, naming the URL and why", async () => {
    const unsigned = new FakeSystem();
    serve(unsigned, url, "echo hi\n", "unsigned");
    expect(await fetch(unsigned)).toEqual({
      ok: false,
      kind: "refused",
      problem: `Cannot use ${url}: it is not signed: there is no signature at ${url}.sig (HTTP 404); sign it with \`controller sign --key KEY --purpose command --url-path /run.sh FILE\`, or set remote.allow_unsigned = true for a lab network`,
    });

    const other = new FakeSystem();
    serve(other, url, "echo hi\n", OTHER.secretKey);
    expect(await fetch(other)).toEqual({
      ok: false,
      kind: "refused",
      problem: `Cannot use ${url}: its signature ${url}.sig does not verify: the signature is not valid for the trusted key (update.trusted_keys)`,
    });

    const swapped = new FakeSystem();
    serve(swapped, url, "echo hi\n");
    swapped.http.set(url, { body: textToBytes("rm -rf /\n") });
    expect(await fetch(swapped)).toMatchObject({ ok: false, kind: "refused", problem: expect.stringContaining("does not verify") });

    const garbled = new FakeSystem();
    serve(garbled, url, "echo hi\n");
    garbled.http.set(`${url}.sig`, { body: textToBytes("not base64!\n") });
    expect(await fetch(garbled)).toMatchObject({ ok: false, kind: "refused", problem: expect.stringContaining('the signature file does not start with "controller-signature 2"') });

    const noKeys = new FakeSystem();
    serve(noKeys, url, "echo hi\n");
    expect(await fetch(noKeys, { trustedKeys: [], allowUnsigned: false })).toMatchObject({
      ok: false,
      problem: expect.stringContaining("there are no trusted keys to check the signature with"),
    });
  });

  test("a signature made for another file, another purpose, past its expiry, or in the old format: refused, saying which", async () => {
    const problemOf = async (signFor: Partial<SignatureClaims>) => {
      const fake = new FakeSystem();
      serve(fake, url, "echo hi\n", KEYS.secretKey, signFor);
      const fetched = await fetch(fake);
      return fetched.ok ? "taken" : fetched.problem;
    };
    const prefix = `Cannot use ${url}: its signature ${url}.sig does not verify: `;
    const resign = "re-sign it with `controller sign --key KEY --purpose command --url-path /run.sh FILE`";
    // another machine's script, signed by the fleet key, served in place of this one
    expect(await problemOf({ target: "/other-lab/wipe.sh" })).toBe(
      `${prefix}the signature file is for URL path /other-lab/wipe.sh, not URL path /run.sh: it signs another file or another place; if this is the right content, ${resign} (update.trusted_keys)`,
    );
    // a key list's signature over the same bytes
    expect(await problemOf({ purpose: "ssh-keys" })).toStartWith(`${prefix}the signature file is for purpose ssh-keys, not command:`);
    expect(await problemOf({ expires: "2025-12-01T00:00:00.000Z" })).toBe(
      `${prefix}the signature expired at 2025-12-01T00:00:00.000Z (it is now 2026-01-01T00:00:00.000Z): ${resign} (update.trusted_keys)`,
    );
    const old = new FakeSystem();
    old.http.set(url, { body: textToBytes("echo hi\n") });
    const nacl = (await import("tweetnacl")).default;
    old.http.set(`${url}.sig`, { body: textToBytes(Buffer.from(nacl.sign.detached(textToBytes("echo hi\n"), KEYS.secretKey)).toString("base64")) });
    expect(await fetch(old)).toMatchObject({ ok: false, kind: "refused", problem: expect.stringContaining("the signature is in the old format (bare base64") });
    // the same path on another server (a mirror) is the same target
    const mirror = new FakeSystem();
    serve(mirror, "http://10.0.2.200/run.sh", "echo hi\n");
    mirror.http.set(url, mirror.http.get("http://10.0.2.200/run.sh") ?? { body: new Uint8Array() });
    mirror.http.set(`${url}.sig`, mirror.http.get("http://10.0.2.200/run.sh.sig") ?? { body: new Uint8Array() });
    expect(await fetch(mirror)).toMatchObject({ ok: true, signedBy: TRUSTED });
  });

  test("remote.allow_unsigned takes it unsigned, with a warning; the signature is not even asked for", async () => {
    const fake = new FakeSystem();
    serve(fake, url, "echo hi\n", "unsigned");
    const { log, sink } = memoryLogger();
    expect(await fetchSignedContent(fake, log, DEFAULT_CONFIG, url, "command", 1000, { trustedKeys: [], allowUnsigned: true })).toEqual({
      ok: true,
      bytes: textToBytes("echo hi\n"),
    });
    expect(fake.httpRequests).toEqual([url]);
    expect(sink.text()).toContain(`WARNING: taking ${url} without checking a signature: remote.allow_unsigned is true`);
  });

  test("unreachable, not found, too big: not fetched, saying why", async () => {
    expect(await fetch(new FakeSystem())).toMatchObject({ ok: false, kind: "unreachable", problem: expect.stringContaining("ECONNREFUSED") });
    const missing = new FakeSystem();
    missing.http.set(`${SERVER}/other`, { body: new Uint8Array() });
    expect(await fetch(missing)).toMatchObject({ ok: false, kind: "unreachable", problem: `Cannot fetch ${url}: the server answered HTTP 404, expected 200` });
    const big = new FakeSystem();
    serve(big, url, "x".repeat(1001));
    expect(await fetch(big)).toMatchObject({ ok: false, kind: "unreachable", problem: `Cannot fetch ${url}: the server announced 1001 bytes, more than the 1000 allowed` });
  });
});

/** The list the dracut module writes of the services it installed (controller_services). */
function withServicesInstalled(fake: FakeSystem, list = "ssh\nlldpd\n"): FakeSystem {
  const at = INSTALLED_SERVICES.lastIndexOf("/");
  fake.addTree(INSTALLED_SERVICES.slice(0, at), { [INSTALLED_SERVICES.slice(at + 1)]: list });
  return fake;
}

/** The fake's dropbearkey writes a key and prints its public half, as the real one does; the module installed dropbear. */
function withSshTools(fake: FakeSystem): FakeSystem {
  withServicesInstalled(fake);
  fake.commandHandlers.set(TOOLS.dropbearkey, async (argv) => {
    await fake.writeText(argv[argv.indexOf("-f") + 1] ?? "", "PRIVATE");
    return { stdout: "Public key portion is:\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey root@lab\nFingerprint: sha256:abc\n" };
  });
  return fake;
}

function sshConfig(keys: string[] = [CONFIG_KEY]): Config {
  return configWith({ ssh: { authorized_keys: keys, wait_seconds: 30, port: 2222 } });
}

describe("services left out of the initramfs (the dracut module's controller_services)", () => {
  test("the module's list: one flag a line, blank lines ignored, anything else named with its line", () => {
    expect(parseInstalledServices("")).toEqual({ services: new Set(), problems: [] });
    expect(parseInstalledServices("ssh\n\nlldpd\n")).toEqual({ services: new Set(["ssh", "lldpd"]), problems: [] });
    expect(parseInstalledServices(" lldpd \ntelnet\n")).toEqual({
      services: new Set(["lldpd"]),
      problems: [`Cannot read ${INSTALLED_SERVICES}: line 2 is "telnet", expected one of ssh, lldpd`],
    });
  });

  test("ssh and lldpd without their services: each says how to get it, nothing is started or fetched, the stage goes on", async () => {
    const fake = withServicesInstalled(new FakeSystem(), "");
    serve(fake, `${SERVER}/keys`, `${URL_KEY}\n`);
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline(`ssh lldpd ssh_keys_url=${SERVER}/keys`), sshConfig(), POLICY, NETWORK_UP);
    expect(fake.services).toEqual([]);
    expect(fake.httpRequests).toEqual([]);
    expect(result.running).toEqual([]);
    expect(result.report.ssh).toEqual({ status: "not-installed", port: 2222, keySources: [], detail: notInstalledMessage("ssh") });
    expect(result.report.lldpd).toEqual({ status: "not-installed", detail: notInstalledMessage("lldpd") });
    expect(sink.text()).toContain(
      `ERROR: The ssh flag needs dropbear, which this initramfs was built without: add controller_services+=" ssh " to a file in /etc/dracut.conf.d ` +
        "on the machine that builds the initramfs, install Debian's dropbear-bin there and build the initramfs again (update-initramfs -u, or dracut --force); " +
        "the boot goes on without ssh",
    );
    expect(sink.text()).toContain(`ERROR: The lldpd flag needs lldpd, which this initramfs was built without: add controller_services+=" lldpd " to a file`);
  });

  test("only the service installed starts; no list at all counts as none installed, with a warning", async () => {
    const fake = withServicesInstalled(new FakeSystem(), "lldpd\n");
    fake.commandHandlers.set(TOOLS.lldpcli, () => ({ stdout: "local-chassis.chassis.name=lab-07\n" }));
    const result = await runServicesStage(fake, memoryLogger().log, parseCmdline("ssh lldpd"), sshConfig(), POLICY, NETWORK_UP);
    expect(result.report.ssh?.status).toBe("not-installed");
    expect(result.report.lldpd).toMatchObject({ status: "running", chassis: "lab-07" });

    const { log, sink } = memoryLogger();
    const none = await runServicesStage(new FakeSystem(), log, parseCmdline("lldpd"), sshConfig(), POLICY, NETWORK_UP);
    expect(none.report.lldpd?.status).toBe("not-installed");
    expect(sink.text()).toContain(`WARNING: Cannot read ${INSTALLED_SERVICES}:`);
  });
});

describe("services stage: ssh", () => {
  test("keys from config.d and a signed ssh_keys_url= go to root's authorized_keys; a fresh host key; dropbear with keys only", async () => {
    const fake = withSshTools(new FakeSystem());
    serve(fake, `${SERVER}/keys`, `${URL_KEY}\n${CONFIG_KEY}\n`);
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline(`ssh ssh_keys_url=${SERVER}/keys`), sshConfig(), POLICY, NETWORK_UP);
    expect(fake.peek(ROOT_AUTHORIZED_KEYS)).toBe(`${CONFIG_KEY}\n${URL_KEY}\n`);
    expect(fake.peek(DROPBEAR_HOST_KEY)).toBe("PRIVATE");
    expect(fake.services.map((service) => service.argv)).toEqual([dropbearArgv(2222)]);
    expect(dropbearArgv(2222)).toEqual(["dropbear", "-F", "-E", "-s", "-j", "-k", "-p", "2222", "-r", DROPBEAR_HOST_KEY]);
    expect(result.running.map((entry) => entry.name)).toEqual(["dropbear"]);
    expect(result.report.ssh).toEqual({
      status: "running",
      port: 2222,
      keySources: [
        { source: "ssh.authorized_keys", keys: 1 },
        { source: `${SERVER}/keys`, keys: 2, signedBy: TRUSTED },
      ],
      hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey",
      login: "ssh -p 2222 root@10.0.2.15",
      detail: "dropbear (pid 1001) listens on port 2222 and lets 2 keys in: ssh -p 2222 root@10.0.2.15",
    });
    expect(sink.text()).toContain("host key of this boot: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey");
  });

  test("an unsigned keys file is refused, naming the URL; the config.d keys still let a person in", async () => {
    const fake = withSshTools(new FakeSystem());
    serve(fake, `${SERVER}/keys`, `${URL_KEY}\n`, "unsigned");
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline(`ssh ssh_keys_url=${SERVER}/keys`), sshConfig(), POLICY, NETWORK_UP);
    expect(fake.peek(ROOT_AUTHORIZED_KEYS)).toBe(`${CONFIG_KEY}\n`);
    expect(result.report.ssh?.status).toBe("running");
    expect(result.report.ssh?.keySources[1]).toMatchObject({ source: `${SERVER}/keys`, keys: 0, problems: [expect.stringContaining("it is not signed")] });
    expect(sink.text()).toContain(`ERROR: Cannot use ${SERVER}/keys: it is not signed`);
  });

  test("with remote.allow_unsigned the unsigned keys file counts", async () => {
    const fake = withSshTools(new FakeSystem());
    serve(fake, `${SERVER}/keys`, `${URL_KEY}\n`, "unsigned");
    await runServicesStage(fake, memoryLogger().log, parseCmdline(`ssh ssh_keys_url=${SERVER}/keys`), sshConfig([]), { trustedKeys: [], allowUnsigned: true }, NETWORK_UP);
    expect(fake.peek(ROOT_AUTHORIZED_KEYS)).toBe(`${URL_KEY}\n`);
  });

  test("no key at all: dropbear is not started, and the error says why", async () => {
    const fake = withSshTools(new FakeSystem());
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline("ssh"), sshConfig([]), POLICY, NETWORK_UP);
    expect(fake.services).toEqual([]);
    expect(result.report.ssh).toMatchObject({ status: "not-started" });
    expect(sink.text()).toContain("Cannot start the SSH server: there is no key to let anyone in");
  });

  test("dropbear or dropbearkey failing: failed in the report, and the stage goes on to lldpd", async () => {
    const fake = withSshTools(new FakeSystem());
    fake.failingServices.set(TOOLS.dropbear, "dropbear: Failed listening on '2222': Address in use");
    fake.commandHandlers.set(TOOLS.lldpcli, () => ({ stdout: "local-chassis.chassis.name=lab-07\n" }));
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline("ssh lldpd"), sshConfig(), POLICY, NETWORK_UP);
    expect(result.report.ssh).toMatchObject({ status: "failed", detail: expect.stringContaining("Address in use") });
    expect(result.report.lldpd).toMatchObject({ status: "running", chassis: "lab-07" });
    expect(sink.text()).toContain("ERROR: Cannot start the SSH server: EXIT: dropbear: Failed listening on '2222': Address in use; the boot goes on without it");

    const noKeygen = withServicesInstalled(new FakeSystem());
    const failed = await runServicesStage(noKeygen, memoryLogger().log, parseCmdline("ssh"), sshConfig(), POLICY, NETWORK_UP);
    expect(failed.report.ssh).toMatchObject({ status: "failed", detail: expect.stringContaining("dropbearkey") });
    expect(noKeygen.services).toEqual([]);
  });

  test("ssh_keys_url= without ssh is a warning, and nothing is fetched", async () => {
    const fake = new FakeSystem();
    const { log, sink } = memoryLogger();
    const result = await runServicesStage(fake, log, parseCmdline(`ssh_keys_url=${SERVER}/keys`), sshConfig(), POLICY, NETWORK_UP);
    expect(result.report).toEqual({});
    expect(fake.httpRequests).toEqual([]);
    expect(sink.text()).toContain(`WARNING: ssh_keys_url=${SERVER}/keys without ssh: no SSH server runs to let those keys in`);
  });
});

describe("services stage: lldpd", () => {
  test("started in the foreground; lldpcli asked until it answers with the chassis name", async () => {
    const fake = withServicesInstalled(new FakeSystem());
    let asked = 0;
    fake.commandHandlers.set(TOOLS.lldpcli, (argv) => {
      asked++;
      if (asked < 3) throw new CommandError(argv, 1, "cannot find lldpd socket", "exit status 1");
      return { stdout: "local-chassis.chassis.mac=52:54:00:12:34:56\nlocal-chassis.chassis.name=lab-07\nlocal-chassis.chassis.mgmt-ip=10.0.2.15\n" };
    });
    const result = await runServicesStage(fake, memoryLogger().log, parseCmdline("lldpd"), DEFAULT_CONFIG, POLICY, NETWORK_UP);
    expect(fake.services.map((service) => service.argv)).toEqual([["lldpd", "-d"]]);
    expect(fake.peek("/run/lldpd")).toBe("<dir>");
    expect(result.report.lldpd).toEqual({ status: "running", chassis: "lab-07", detail: "lldpd (pid 1001) runs and advertises the chassis lab-07" });
    expect(asked).toBe(3);
  });

  test("lldpcli never answering: the wait ends at its deadline, lldpd still runs (and is stopped later)", async () => {
    const fake = withServicesInstalled(new FakeSystem());
    fake.commandHandlers.set(TOOLS.lldpcli, (argv) => {
      throw new CommandError(argv, 1, "cannot find lldpd socket", "exit status 1");
    });
    const result = await runServicesStage(fake, memoryLogger().log, parseCmdline("lldpd"), DEFAULT_CONFIG, POLICY, NETWORK_UP);
    expect(fake.now()).toBe(10_000);
    expect(result.report.lldpd).toMatchObject({ status: "running", detail: expect.stringContaining("did not answer lldpcli within 10 s") });
    expect(result.running.length).toBe(1);
  });

  test("lldpd failing to start: failed, the boot goes on", async () => {
    const fake = withServicesInstalled(new FakeSystem());
    fake.failingServices.set(TOOLS.lldpd, "lldpd: unable to find _lldpd user");
    const result = await runServicesStage(fake, memoryLogger().log, parseCmdline("lldpd"), DEFAULT_CONFIG, POLICY, NETWORK_UP);
    expect(result.report.lldpd).toMatchObject({ status: "failed", detail: expect.stringContaining("unable to find _lldpd user") });
    expect(result.running).toEqual([]);
  });

  test("stopServices stops each and says so; one that cannot be stopped is an error, not the end", async () => {
    const { log, sink } = memoryLogger();
    const stopped = await stopServices(log, [
      { name: "dropbear", service: { pid: 5, logFile: "/x", stop: async () => {} } },
      { name: "lldpd", service: { pid: 6, logFile: "/y", stop: async () => Promise.reject(new Error("EPERM")) } },
    ]);
    expect(stopped).toEqual(["dropbear (pid 5) stopped", "Cannot stop lldpd (pid 6): EPERM"]);
    expect(sink.text()).toContain("ERROR: Cannot stop lldpd (pid 6): EPERM");
  });
});

describe("the wait for `controller continue`", () => {
  const running = { ssh: { status: "running" as const, port: 22, keySources: [], login: "ssh -p 22 root@10.0.2.15", detail: "" } };

  test("ends when `controller continue` writes its file; a stale file from before does not count", async () => {
    const fake = new FakeSystem().addTree("/run/controller", { continue: "stale" });
    const sleep = fake.sleep.bind(fake);
    fake.sleep = async (ms) => {
      await sleep(ms);
      if (fake.now() === 5000) await fake.writeText(CONTINUE_FILE, "now");
    };
    const { log, sink } = memoryLogger();
    const result = await runWaitStage(fake, log, sshConfig(), running);
    expect(result).toEqual({ endedBy: "continue", waitedMs: 5000, detail: "`controller continue` after 5 s" });
    expect(sink.text()).toContain("waiting up to 30 s (ssh.wait_seconds) before the handoff: log in with ssh -p 22 root@10.0.2.15");
  });

  test("ends at ssh.wait_seconds without anyone, with reminders on the way", async () => {
    const fake = new FakeSystem();
    const { log, sink } = memoryLogger();
    const config = configWith({ ssh: { authorized_keys: [], wait_seconds: 150, port: 22 } });
    expect(await runWaitStage(fake, log, config, running)).toEqual({
      endedBy: "deadline",
      waitedMs: 150_000,
      detail: "no `controller continue` within 150 s (ssh.wait_seconds)",
    });
    expect(fake.now()).toBe(150_000);
    expect(sink.consoleLines.filter((line) => line.includes("still waiting")).length).toBe(2);
  });

  test("nothing to wait for without a running SSH server", async () => {
    const fake = new FakeSystem();
    expect(await runWaitStage(fake, memoryLogger().log, sshConfig(), { ssh: { ...running.ssh, status: "failed" } })).toBeUndefined();
    expect(fake.now()).toBe(0);
  });
});

/** The fake's sh runs the command_url script as `behaviour` says, writing its output file. */
function withShell(fake: FakeSystem, behaviour: (script: string) => Promise<{ output: string; exitStatus?: number; runMs?: number; killed?: boolean }>): FakeSystem {
  fake.commandHandlers.set(TOOLS.shell, async (argv) => {
    const script = await fake.readText(argv[3] ?? "");
    const result = await behaviour(script);
    await fake.writeText(COMMAND_OUTPUT, result.output);
    await fake.sleep(result.runMs ?? 100);
    if (result.killed === true) throw new CommandError(argv, null, "", "it took longer than 5 s and was killed");
    if ((result.exitStatus ?? 0) !== 0) throw new CommandError(argv, result.exitStatus ?? 0, "", `exit status ${result.exitStatus}`);
    return { stdout: "" };
  });
  return fake;
}

describe("command stage", () => {
  const url = `${SERVER}/run.sh`;

  test("a signed script runs with sh; its output is on the console line by line and in the result, with its exit status", async () => {
    const fake = withShell(new FakeSystem(), async (script) => ({ output: script === "echo hello\n" ? "hello\nworld" : "wrong script" }));
    serve(fake, url, "echo hello\n");
    const { log, sink } = memoryLogger();
    const result = await runCommandStage(fake, log, url, DEFAULT_CONFIG, POLICY);
    expect(result).toMatchObject({ url, status: "succeeded", exitStatus: 0, signedBy: TRUSTED, output: "hello\nworld", outputTruncated: false });
    expect(fake.peek(COMMAND_SCRIPT)).toBe("echo hello\n");
    expect(fake.commands.find((argv) => argv[0] === TOOLS.shell)).toEqual(["sh", "-c", 'exec sh "$0" 2>&1', COMMAND_SCRIPT]);
    expect(sink.consoleLines).toEqual(expect.arrayContaining(["controller: | hello", "controller: | world"]));
  });

  test("unsigned: refused, not run, and the boot goes on", async () => {
    const fake = withShell(new FakeSystem(), async () => ({ output: "ran!" }));
    serve(fake, url, "echo hello\n", "unsigned");
    const { log, sink } = memoryLogger();
    const result = await runCommandStage(fake, log, url, DEFAULT_CONFIG, POLICY);
    expect(result).toEqual({ url, status: "refused", detail: expect.stringContaining(`Cannot use ${url}: it is not signed`) });
    expect(fake.commands.some((argv) => argv[0] === TOOLS.shell)).toBe(false);
    expect(fake.peek(COMMAND_SCRIPT)).toBeUndefined();
    expect(sink.text()).toContain("the boot goes on without running it");
  });

  test("unreachable: not run", async () => {
    const result = await runCommandStage(new FakeSystem(), memoryLogger().log, url, DEFAULT_CONFIG, POLICY);
    expect(result).toMatchObject({ status: "unreachable", detail: expect.stringContaining("ECONNREFUSED") });
  });

  test("a failing script: its status and output in the result, an error on the console", async () => {
    const fake = withShell(new FakeSystem(), async () => ({ output: "disk 3 failed\n", exitStatus: 3 }));
    serve(fake, url, "exit 3\n");
    const { log, sink } = memoryLogger();
    const result = await runCommandStage(fake, log, url, DEFAULT_CONFIG, POLICY);
    expect(result).toMatchObject({ status: "failed", exitStatus: 3, output: "disk 3 failed\n" });
    expect(sink.text()).toContain(`ERROR: ${url} exited with status 3 after`);
  });

  test("a script that runs past remote.command_timeout_seconds is killed: timed-out", async () => {
    const fake = withShell(new FakeSystem(), async () => ({ output: "working\n", runMs: 5000, killed: true }));
    serve(fake, url, "sleep 1000\n");
    const config = configWith({ remote: { allow_unsigned: false, command_timeout_seconds: 5 } });
    const result = await runCommandStage(fake, memoryLogger().log, url, config, POLICY);
    expect(result).toMatchObject({ status: "timed-out", exitStatus: null, output: "working\n" });
    expect(result.detail).toBe(`${url} ran longer than remote.command_timeout_seconds (5 s) and was killed; the boot goes on`);
  });

  test("a huge output is capped in the result and on the console; the file keeps it all", async () => {
    const line = "x".repeat(99);
    const fake = withShell(new FakeSystem(), async () => ({ output: `${line}\n`.repeat(500) }));
    serve(fake, url, "yes\n");
    const { log, sink } = memoryLogger();
    const result = await runCommandStage(fake, log, url, DEFAULT_CONFIG, POLICY);
    expect(result.output?.length).toBe(COMMAND_OUTPUT_REPORT_BYTES);
    expect(result.outputTruncated).toBe(true);
    expect(fake.peek(COMMAND_OUTPUT)?.length).toBe(50_000);
    expect(sink.consoleLines.filter((text) => text.startsWith("controller: | x")).length).toBe(Math.floor(COMMAND_OUTPUT_REPORT_BYTES / 100));
    expect(sink.text()).toContain(`all of it is in ${COMMAND_OUTPUT}`);
  });
});

describe("a whole boot with the flags", () => {
  function flaggedMachine(cmdline: string): FakeSystem {
    const fake = labMachine({
      cmdline: `root=controller console=ttyS0 ${cmdline}`,
      initramfsConfig: {
        "60-lab.toml": `[update]\ntrusted_keys = ["${TRUSTED}"]\n[ssh]\nauthorized_keys = ["${CONFIG_KEY}"]\nwait_seconds = 60\n`,
      },
    });
    fake.addTree(SYS_CLASS_NET, { "eth0/type": "1\n", "eth0/address": "52:54:00:12:34:56\n" });
    fake.commandHandlers.set(TOOLS.busybox, async (argv) => {
      if (argv[1] === "ip") fake.addTree(`${SYS_CLASS_NET}/eth0`, { carrier: "1\n" });
      if (argv[1] === "udhcpc") {
        await fake.mkdir(NETWORK_DIR);
        await fake.writeText(`${NETWORK_DIR}/eth0.lease`, "interface=eth0\nip=10.0.2.15\nsubnet=255.255.255.0\n");
      }
      return { stdout: "" };
    });
    fake.commandHandlers.set(TOOLS.lldpcli, () => ({ stdout: "local-chassis.chassis.name=lab-07\n" }));
    return withSshTools(fake);
  }

  test("net ssh lldpd command_url: network without update servers, services, the command, the wait, services stopped, then the handoff", async () => {
    const fake = flaggedMachine(`net ssh lldpd command_url=${SERVER}/run.sh`);
    // the script looks at the mounted system, which only exists after the mounts
    withShell(fake, async () => ({ output: `image ${fake.peek("/sysroot/etc/test-image-id")}\n` }));
    serve(fake, `${SERVER}/run.sh`, "cat /sysroot/etc/test-image-id\n");
    const sleep = fake.sleep.bind(fake);
    fake.sleep = async (ms) => {
      await sleep(ms);
      // someone logs in and says continue while the controller waits, and only then
      if (fake.services.some((service) => service.running) && fake.peek("/run/controller/report.json") === undefined && fake.peek(COMMAND_OUTPUT) !== undefined) {
        await fake.writeText(CONTINUE_FILE, "now");
      }
    };
    const { log } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");
    const stages = report.stages.map((stage) => stage.stage);
    expect(stages.slice(stages.indexOf("network"))).toEqual([
      "network", "check", "mounts", "overmounts", "attempt", "kernel", "services", "command", "wait", "stop-services", "handoff",
    ]);
    expect(report.stages.every((stage) => stage.outcome === "ok")).toBe(true);
    expect(report.update.network).toMatchObject({ status: "up", interfaces: [{ name: "eth0", address: "10.0.2.15/24" }] });
    expect(report.services).toMatchObject({
      ssh: { status: "running", port: 22 },
      lldpd: { status: "running", chassis: "lab-07" },
      stopped: ["dropbear (pid 1001) stopped", "lldpd (pid 1002) stopped"],
    });
    expect(report.command).toMatchObject({ status: "succeeded", exitStatus: 0, output: "image system-a\n", signedBy: TRUSTED });
    expect(report.wait).toMatchObject({ endedBy: "continue" });
    expect(fake.services.every((service) => !service.running)).toBe(true);
    const written = JSON.parse(fake.peek("/run/controller/report.json") ?? "{}");
    expect(written.command.output).toBe("image system-a\n");
    expect(written.services.stopped.length).toBe(2);
    // `controller status` tells a person the same
    const status = formatStatus(report);
    expect(status).toContain("network: eth0: 10.0.2.15/24 (");
    expect(status).toContain("ssh: running: dropbear (pid 1001) listens on port 22 and lets 1 keys in: ssh -p 22 root@10.0.2.15");
    expect(status).toContain("lldpd: running: lldpd (pid 1002) runs and advertises the chassis lab-07");
    expect(status).toContain("wait: `controller continue` after");
    expect(status).toContain(`command: succeeded: ${SERVER}/run.sh exited with status 0 after`);
  });

  test("no flags: none of the new stages, and the network is not needed", async () => {
    const { report } = await runBoot(labMachine(), memoryLogger().log);
    const stages = report.stages.map((stage) => stage.stage);
    for (const stage of ["services", "command", "wait", "stop-services"]) expect(stages).not.toContain(stage);
    expect(report.services).toBeUndefined();
    expect(report.update.network.status).toBe("not-needed");
  });

  test("ssh and lldpd on an initramfs built without their services: said in the report and on the console, no wait, the boot goes on", async () => {
    const fake = flaggedMachine("net ssh lldpd");
    withServicesInstalled(fake, "");
    const { outcome, report } = await runBoot(fake, memoryLogger().log);
    expect(outcome).toBe("handed-off");
    expect(report.services).toMatchObject({ ssh: { status: "not-installed" }, lldpd: { status: "not-installed" } });
    expect(report.stages.map((stage) => stage.stage)).not.toContain("wait");
    expect(fake.services).toEqual([]);
    expect(formatStatus(report)).toContain(`ssh: not-installed: ${notInstalledMessage("ssh")}`);
    expect(fake.peek("/run/controller/handoff.env")).toBe("CONTROLLER_INIT=/sbin/init\n");
  });

  test("an unsigned command_url and a dropbear that will not start cost nothing but their report entries", async () => {
    const fake = flaggedMachine(`ssh command_url=${SERVER}/run.sh`);
    fake.failingServices.set(TOOLS.dropbear, "dropbear: bad");
    serve(fake, `${SERVER}/run.sh`, "echo hi\n", "unsigned");
    const { outcome, report } = await runBoot(fake, memoryLogger().log);
    expect(outcome).toBe("handed-off");
    expect(report.command?.status).toBe("refused");
    expect(report.services?.ssh?.status).toBe("failed");
    expect(report.wait).toBeUndefined();
    expect(report.stages.map((stage) => stage.stage)).not.toContain("wait");
    expect(fake.peek("/run/controller/handoff.env")).toBe("CONTROLLER_INIT=/sbin/init\n");
  });
});
