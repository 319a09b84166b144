// Alchemy Linux's kernel command line flags in real boots, from the images
// built with controller_services "ssh lldpd" (the module leaves the services
// out by default): shell-services.img, and for ssh also systemd-services.img:
//  - two NICs: `net` (both get a lease), `lldpd` (runs and
//    answers lldpcli), a signed `command_url=` (runs; its output on the console
//    and in the report), and `shell` (a command typed on the serial console,
//    then `exit`, and the boot goes on to the test system);
//  - `ssh` with `ssh_keys_url=` (a signed keys file): the
//    host logs in through a hostfwd port on 127.0.0.1 with that key and says
//    `controller continue`; an unsigned `command_url=` is refused.
// Files are served by a small Bun.serve on 127.0.0.1 that the guest reaches
// only through guestfwd at 10.0.2.100; they are signed with the controller's
// own `keygen` and `sign`.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { GUEST_FORWARD_ADDRESS, type VmNetwork, type VmOptions } from "../../qemu-harness/qemu-args.ts";
import { parseTestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, type Boot, freePort, requireArtifacts, runFolder, SCENARIO_TIMEOUT_MS, scenarioDisks, SHUTDOWN_TIMEOUT_MS, vmOptions } from "./fixtures.ts";

const STEP_TIMEOUT_MS = 120_000;

/** What the signed command_url script prints: facts only the guest knows, each line marked. */
const SIGNED_SCRIPT = `#!/bin/sh
bb=/usr/lib/controller/busybox
for path in /sys/class/net/*; do
  name=\${path##*/}
  [ "$name" = lo ] && continue
  echo "@@CMD addr $name $($bb ip -4 -o addr show dev "$name" | $bb awk '{ print $4 }')"
done
echo "@@CMD image $(cat /sysroot/etc/test-image-id)"
echo "@@CMD sum $((6 * 7))"
echo "@@CMD stderr" >&2
exit 0
`;
/** Never signed: it must not run. */
const UNSIGNED_SCRIPT = 'echo "@@CMD unsigned ran"\n';

interface World {
  readonly work: string;
  readonly trustedKey: string;
  readonly sshKey: string;
  readonly port: number;
  readonly requests: string[];
  stop(): void;
}

async function makeWorld(): Promise<World> {
  const work = join(await runFolder(), "alchemy");
  const files = join(work, "files");
  await mkdir(files, { recursive: true });
  await runCommand([ARTIFACTS.controller, "keygen", join(work, "lab")]);
  const trustedKey = (await readFile(join(work, "lab.pub"), "utf8")).trim();
  const sshKey = join(work, "id_ed25519");
  await runCommand(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alchemy-test", "-f", sshKey]);
  await writeFile(join(files, "run.sh"), SIGNED_SCRIPT);
  await writeFile(join(files, "unsigned.sh"), UNSIGNED_SCRIPT);
  await writeFile(join(files, "keys"), `# the test's key\n${await readFile(`${sshKey}.pub`, "utf8")}`);
  // the server below serves `files` as its root: each signature names the URL path the guest fetches
  const sign = (purpose: string, file: string) => runCommand([ARTIFACTS.controller, "sign", "--key", join(work, "lab.secret"), "--purpose", purpose, "--served-root", files, join(files, file)]);
  await sign("command", "run.sh");
  await sign("ssh-keys", "keys");

  const requests: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 120,
    async fetch(request) {
      const name = new URL(request.url).pathname.slice(1);
      requests.push(name);
      const file = Bun.file(join(files, name));
      return /^[a-z.]+$/.test(name) && (await file.exists()) ? new Response(file) : new Response("not found", { status: 404 });
    },
  });
  return { work, trustedKey, sshKey, port: server.port as number, requests, stop: () => server.stop(true) };
}

let world: World;
beforeAll(async () => {
  await requireArtifacts();
  world = await makeWorld();
});
afterAll(() => world?.stop());

function url(name: string): string {
  return `http://${GUEST_FORWARD_ADDRESS}:${world.port}/${name}`;
}

/** The controller's log lines of the command's output: "controller: command: | TEXT" → TEXT. */
function commandLines(console: string): string[] {
  return console.split("\n").flatMap((line) => {
    const match = /controller: command: \| (.*)$/.exec(line.trimEnd());
    return match?.[1] === undefined ? [] : [match[1]];
  });
}

/** The boot's options from its flavour's image with the flags' services (shell-services.img, systemd-services.img), with this network. */
function withServices(boot: Boot, network: VmNetwork): VmOptions {
  const { append } = vmOptions(boot);
  const initrd = ARTIFACTS.initramfsWithServices[boot.flavour];
  if (append === undefined) throw new Error(`Cannot boot ${initrd}: vmOptions gave no kernel command line`);
  return { kernel: ARTIFACTS.kernel, initrd, append, disks: [boot.disk], network };
}

describe("Alchemy's flags", () => {
  test(
    "net with two NICs, lldpd, a signed command_url and shell: all in one boot, which goes on to the test system",
    async () => {
      const disks = await scenarioDisks();
      const boot: Boot = {
        flavour: "shell",
        disk: disks.standard,
        append: `net lldpd shell command_url=${url("run.sh")} controller.update.trusted_keys=['${world.trustedKey}']`,
      };
      const options = withServices(boot, { hostPorts: [world.port], extraNics: 1 });
      await withVm(options, async (vm) => {
        await vm.waitFor("opening a shell on the console", BOOT_TIMEOUT_MS);
        await vm.waitFor(/# $/, STEP_TIMEOUT_MS);
        // typed on the serial console: the arithmetic and the file are the guest's own
        await vm.send('echo "@@SHELL $((1000 + 337)) $(cat /sysroot/etc/test-image-id)"\n');
        await vm.waitFor("@@SHELL 1337 system-a", STEP_TIMEOUT_MS);
        await vm.send("exit 7\n");
        await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
        await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
        const console = vm.console();
        const markers = parseTestMarkers(console);
        expect(markers.imageId).toBe("system-a");
        const report = markers.report as BootReport;

        // net: both interfaces have their own address, seen by the guest and in the report
        const lines = commandLines(console);
        const addresses = lines.filter((line) => line.startsWith("@@CMD addr ")).map((line) => line.split(" ").slice(2).join(" "));
        expect(addresses.length).toBe(2);
        expect(addresses.map((entry) => entry.split(" ")[1]).sort()).toEqual(["10.0.2.15/24", "10.0.3.15/24"]);
        expect(report.update.network.status).toBe("up");
        expect(report.update.network.interfaces?.map((entry) => entry.address).sort()).toEqual(["10.0.2.15/24", "10.0.3.15/24"]);

        // lldpd ran and answered lldpcli; it was stopped before the handoff
        expect(report.services?.lldpd).toMatchObject({ status: "running", chassis: expect.any(String) });
        expect(report.services?.stopped).toEqual([expect.stringMatching(/^lldpd \(pid \d+\) stopped$/)]);

        // the signed command ran after the mounts: its output on the console and in the report
        expect(lines).toEqual(expect.arrayContaining(["@@CMD image system-a", "@@CMD sum 42", "@@CMD stderr"]));
        expect(report.command).toMatchObject({ status: "succeeded", exitStatus: 0, signedBy: world.trustedKey, outputTruncated: false });
        expect(report.command?.output).toContain("@@CMD sum 42\n");
        expect(world.requests).toEqual(expect.arrayContaining(["run.sh", "run.sh.sig"]));

        // the shell's exit status is in the report, and the boot went on
        expect(report.handoff?.shell).toEqual({ exitStatus: 7 });
        expect(report.stages.filter((stage) => stage.outcome !== "ok")).toEqual([]);
      });
    },
    SCENARIO_TIMEOUT_MS + STEP_TIMEOUT_MS,
  );

  // dropbear under both inits: in the systemd initrd the controller (and the dropbear it starts) run in a unit
  test.each([["shell"], ["systemd"]] as const)(
    "ssh (%s initramfs) with a signed ssh_keys_url: the host logs in through hostfwd and says continue; an unsigned command_url is refused",
    async (flavour) => {
      const disks = await scenarioDisks();
      const sshPort = await freePort();
      const boot: Boot = {
        flavour,
        disk: disks.standard,
        append:
          `ssh ssh_keys_url=${url("keys")} command_url=${url("unsigned.sh")} ` +
          `controller.update.trusted_keys=['${world.trustedKey}'] controller.ssh.wait_seconds=400`,
      };
      const options = withServices(boot, { hostPorts: [world.port], hostForwards: [{ hostPort: sshPort, guestPort: 22 }] });
      await withVm(options, async (vm) => {
        await vm.waitFor("run `controller continue` there to go on", BOOT_TIMEOUT_MS);
        // timeout(1): a login that hangs fails the test instead of waiting for bun's limit
        const ssh = await runCommand([
            "timeout",
            String(STEP_TIMEOUT_MS / 1000),
            "ssh",
            "-i",
            world.sshKey,
            "-p",
            String(sshPort),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=60",
            "root@127.0.0.1",
            "cat /proc/cmdline; cat /sysroot/etc/test-image-id; controller continue",
        ]);
        expect(ssh.stdout).toContain(`ssh_keys_url=${url("keys")}`);
        expect(ssh.stdout).toContain("system-a");
        expect(ssh.stdout).toContain("Wrote /run/controller/continue");

        await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
        await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
        const console = vm.console();
        const markers = parseTestMarkers(console);
        expect(markers.imageId).toBe("system-a");
        const report = markers.report as BootReport;
        expect(report.services?.ssh).toMatchObject({
          status: "running",
          port: 22,
          keySources: [
            { source: "ssh.authorized_keys", keys: 0 },
            { source: url("keys"), keys: 1, signedBy: world.trustedKey },
          ],
        });
        expect(report.wait).toMatchObject({ endedBy: "continue" });
        expect(report.services?.stopped).toEqual([expect.stringMatching(/^dropbear \(pid \d+\) stopped$/)]);

        // the unsigned script was fetched, its signature looked for, and it never ran
        expect(report.command).toMatchObject({ status: "refused", detail: expect.stringContaining(`Cannot use ${url("unsigned.sh")}: it is not signed`) });
        expect(console).toContain(`Cannot use ${url("unsigned.sh")}: it is not signed`);
        expect(console).not.toContain("@@CMD unsigned ran");
        expect(world.requests).toEqual(expect.arrayContaining(["keys", "keys.sig", "unsigned.sh", "unsigned.sh.sig"]));
      });
    },
    SCENARIO_TIMEOUT_MS + STEP_TIMEOUT_MS,
  );
});
