// Stage "services": the programs the kernel command line asks to run in the
// initramfs while the boot goes on. `ssh` starts Debian's dropbear, so a person
// can log in as root (keys from config.d's [ssh] and from ssh_keys_url=, never
// a password) and look at the mounted system while the wait stage holds the
// handoff. `lldpd` starts Debian's lldpd, so the switch ports learn this
// machine, and asks it with lldpcli what it advertises. Neither is needed to
// boot: a service that cannot start is an error in the log and the report,
// and the boot goes on. Both are stopped before the handoff (stopServices);
// the booted system runs its own. The dracut module installs them only when
// its controller_services setting asks for them (each costs the initramfs's
// size, unpack time and RAM on every boot): a flag whose service was left
// out says how to get it, and the boot goes on.

import type { Cmdline } from "../config/cmdline.ts";
import type { Config } from "../config/schema.ts";
import { chassisNameOf, lldpdArgv } from "../plans/lldpd.ts";
import { dropbearArgv, parseAuthorizedKeys } from "../plans/ssh.ts";
import type { Logger } from "../system/log.ts";
import { DROPBEAR_HOST_KEY, INSTALLED_SERVICES, LLDPD_CHROOT, ROOT_AUTHORIZED_KEYS, SERVICES_LOG_DIR, TOOLS } from "../system/paths.ts";
import type { Service, System } from "../system/system.ts";
import { SSH_KEYS_MAX_BYTES } from "../update/limits.ts";
import type { NetworkResult } from "./network.ts";
import { fetchSignedContent, type TrustPolicy } from "./remote-content.ts";

/** How long lldpd gets to open its control socket before lldpcli's question counts as unanswered. */
const LLDPD_ANSWER_MS = 10_000;
const LLDPCLI_POLL_MS = 500;
const LLDPCLI_TIMEOUT_MS = 5000;
const DROPBEARKEY_TIMEOUT_MS = 30_000;

/** The flags whose services the dracut module can install, with the server each runs and the Debian package that has it. */
const SERVICES = {
  ssh: { program: "dropbear", package: "dropbear-bin" },
  lldpd: { program: "lldpd", package: "lldpd" },
} as const;

export type ServiceFlag = keyof typeof SERVICES;

function isServiceFlag(word: string): word is ServiceFlag {
  return Object.hasOwn(SERVICES, word);
}

export interface InstalledServices {
  readonly services: ReadonlySet<ServiceFlag>;
  readonly problems: readonly string[];
}

/** The module's list of installed services (INSTALLED_SERVICES): one flag a line, blank lines ignored. */
export function parseInstalledServices(text: string): InstalledServices {
  const services = new Set<ServiceFlag>();
  const problems: string[] = [];
  text.split("\n").forEach((raw, index) => {
    const word = raw.trim();
    if (word === "") return;
    if (isServiceFlag(word)) services.add(word);
    else problems.push(`Cannot read ${INSTALLED_SERVICES}: line ${index + 1} is "${word}", expected one of ${Object.keys(SERVICES).join(", ")}`);
  });
  return { services, problems };
}

async function installedServices(system: System, log: Logger): Promise<ReadonlySet<ServiceFlag>> {
  let text: string;
  try {
    text = await system.readText(INSTALLED_SERVICES);
  } catch (error) {
    log.warn(`Cannot read ${INSTALLED_SERVICES}: ${messageOf(error)}; taking it that no service was installed`);
    return new Set();
  }
  const { services, problems } = parseInstalledServices(text);
  for (const problem of problems) log.warn(problem);
  return services;
}

/** What a flag whose service the initramfs was built without says: how to get it, and that the boot goes on. */
export function notInstalledMessage(flag: ServiceFlag): string {
  const service = SERVICES[flag];
  return (
    `The ${flag} flag needs ${service.program}, which this initramfs was built without: add controller_services+=" ${flag} " ` +
    `to a file in /etc/dracut.conf.d on the machine that builds the initramfs, install Debian's ${service.package} there ` +
    `and build the initramfs again (update-initramfs -u, or dracut --force); the boot goes on without ${flag}`
  );
}

export interface KeySource {
  /** "ssh.authorized_keys" or the URL */
  readonly source: string;
  readonly keys: number;
  /** why it gave none, or what was left out */
  readonly problems?: readonly string[];
  /** the trusted key that signed the URL's content; absent for config.d and for unsigned content taken with remote.allow_unsigned */
  readonly signedBy?: string;
}

export interface SshOutcome {
  readonly status: "running" | "failed" | "not-started" | "not-installed";
  readonly port: number;
  readonly keySources: readonly KeySource[];
  /** "ssh-ed25519 AAAA..." of this boot's host key, for a person's known_hosts */
  readonly hostKey?: string;
  /** how to log in, when it runs: "ssh -p 22 root@10.0.2.15" */
  readonly login?: string;
  readonly detail: string;
}

export interface LldpdOutcome {
  readonly status: "running" | "failed" | "not-installed";
  /** the chassis name lldpd advertises, as lldpcli tells it */
  readonly chassis?: string;
  readonly detail: string;
}

export interface ServicesReport {
  readonly ssh?: SshOutcome;
  readonly lldpd?: LldpdOutcome;
  /** filled in by stopServices: "dropbear (pid 412) stopped" */
  readonly stopped?: readonly string[];
}

export interface RunningService {
  readonly name: string;
  readonly service: Service;
}

export interface ServicesResult {
  readonly report: ServicesReport;
  readonly running: readonly RunningService[];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function runServicesStage(
  system: System,
  log: Logger,
  cmdline: Cmdline,
  config: Config,
  policy: TrustPolicy,
  network: NetworkResult,
): Promise<ServicesResult> {
  const running: RunningService[] = [];
  let ssh: SshOutcome | undefined;
  let lldpd: LldpdOutcome | undefined;
  if (!cmdline.ssh && cmdline.sshKeysUrl !== undefined) {
    log.warn(`ssh_keys_url=${cmdline.sshKeysUrl} without ssh: no SSH server runs to let those keys in; add ssh to the kernel command line`);
  }
  const installed = cmdline.ssh || cmdline.lldpd ? await installedServices(system, log) : new Set<ServiceFlag>();
  if (cmdline.ssh) {
    if (installed.has("ssh")) ssh = await startSsh(system, log, cmdline, config, policy, network, running);
    else ssh = { status: "not-installed", port: config.ssh.port, keySources: [], detail: notInstalled(log, "ssh") };
  }
  if (cmdline.lldpd) lldpd = installed.has("lldpd") ? await startLldpd(system, log, running) : { status: "not-installed", detail: notInstalled(log, "lldpd") };
  if (ssh === undefined && lldpd === undefined) log.info("none asked for (ssh, lldpd)");
  return { report: { ...(ssh === undefined ? {} : { ssh }), ...(lldpd === undefined ? {} : { lldpd }) }, running };
}

function notInstalled(log: Logger, flag: ServiceFlag): string {
  const detail = notInstalledMessage(flag);
  log.error(detail);
  return detail;
}

async function startSsh(
  system: System,
  log: Logger,
  cmdline: Cmdline,
  config: Config,
  policy: TrustPolicy,
  network: NetworkResult,
  running: RunningService[],
): Promise<SshOutcome> {
  const port = config.ssh.port;
  const keySources: KeySource[] = [{ source: "ssh.authorized_keys", keys: config.ssh.authorized_keys.length }];
  const keys = [...config.ssh.authorized_keys];
  if (cmdline.sshKeysUrl !== undefined) {
    const url = cmdline.sshKeysUrl;
    const fetched = await fetchSignedContent(system, log, config, url, "ssh-keys", SSH_KEYS_MAX_BYTES, policy);
    if (!fetched.ok) {
      log.error(`${fetched.problem}; no keys from it`);
      keySources.push({ source: url, keys: 0, problems: [fetched.problem] });
    } else {
      const parsed = parseAuthorizedKeys(Buffer.from(fetched.bytes).toString("utf8"), url);
      for (const problem of parsed.problems) log.warn(problem);
      if (parsed.keys.length === 0) log.warn(`${url} holds no public key line`);
      keys.push(...parsed.keys);
      log.info(`${parsed.keys.length} keys from ${url}${fetched.signedBy === undefined ? " (unsigned)" : ", signed by a trusted key"}`);
      keySources.push({
        source: url,
        keys: parsed.keys.length,
        ...(parsed.problems.length === 0 ? {} : { problems: parsed.problems }),
        ...(fetched.signedBy === undefined ? {} : { signedBy: fetched.signedBy }),
      });
    }
  }
  const unique = [...new Set(keys)];
  if (unique.length === 0) {
    const detail = "Cannot start the SSH server: there is no key to let anyone in (ssh.authorized_keys is empty and ssh_keys_url= gave none), and password logins are off";
    log.error(detail);
    return { status: "not-started", port, keySources, detail };
  }

  try {
    await system.mkdir(ROOT_AUTHORIZED_KEYS.slice(0, ROOT_AUTHORIZED_KEYS.lastIndexOf("/")));
    await system.writeText(ROOT_AUTHORIZED_KEYS, `${unique.join("\n")}\n`);
    await system.mkdir(DROPBEAR_HOST_KEY.slice(0, DROPBEAR_HOST_KEY.lastIndexOf("/")));
    // dropbearkey refuses to overwrite; a key left from an earlier attempt in this initramfs goes
    await system.remove(DROPBEAR_HOST_KEY);
    const generated = await system.exec([TOOLS.dropbearkey, "-t", "ed25519", "-f", DROPBEAR_HOST_KEY], { timeoutMs: DROPBEARKEY_TIMEOUT_MS });
    const hostKey = generated.stdout.split("\n").find((line) => line.startsWith("ssh-ed25519 "))?.split(" ").slice(0, 2).join(" ");
    const service = await system.startService(dropbearArgv(port), `${SERVICES_LOG_DIR}/dropbear.log`);
    running.push({ name: "dropbear", service });
    const login = `ssh -p ${port} root@${network.address === undefined ? "THIS-MACHINE" : network.address.split("/")[0]}`;
    const detail = `dropbear (pid ${service.pid}) listens on port ${port} and lets ${unique.length} keys in: ${login}`;
    log.info(detail);
    if (hostKey !== undefined) log.info(`host key of this boot: ${hostKey}`);
    return { status: "running", port, keySources, ...(hostKey === undefined ? {} : { hostKey }), login, detail };
  } catch (error) {
    const detail = `Cannot start the SSH server: ${messageOf(error)}; the boot goes on without it`;
    log.error(detail);
    return { status: "failed", port, keySources, detail };
  }
}

async function startLldpd(system: System, log: Logger, running: RunningService[]): Promise<LldpdOutcome> {
  let service: Service;
  try {
    await system.mkdir(LLDPD_CHROOT);
    service = await system.startService(lldpdArgv(), `${SERVICES_LOG_DIR}/lldpd.log`);
  } catch (error) {
    const detail = `Cannot start lldpd: ${messageOf(error)}; the boot goes on without it`;
    log.error(detail);
    return { status: "failed", detail };
  }
  running.push({ name: "lldpd", service });
  // lldpd opens its control socket a moment after it starts: ask until it answers, within a deadline
  const deadline = system.monotonicMs() + LLDPD_ANSWER_MS;
  let lastProblem = "";
  for (;;) {
    try {
      const { stdout } = await system.exec([TOOLS.lldpcli, "-f", "keyvalue", "show", "chassis"], { timeoutMs: LLDPCLI_TIMEOUT_MS });
      const chassis = chassisNameOf(stdout);
      if (chassis !== undefined) {
        const detail = `lldpd (pid ${service.pid}) runs and advertises the chassis ${chassis}`;
        log.info(detail);
        return { status: "running", chassis, detail };
      }
      lastProblem = "lldpcli showed no chassis name";
    } catch (error) {
      lastProblem = messageOf(error);
    }
    const left = deadline - system.monotonicMs();
    if (left <= 0) break;
    await system.sleep(Math.min(LLDPCLI_POLL_MS, left));
  }
  const detail = `lldpd (pid ${service.pid}) was started but did not answer lldpcli within ${LLDPD_ANSWER_MS / 1000} s: ${lastProblem}`;
  log.warn(detail);
  return { status: "running", detail };
}

/** Stops every service the stage started, before the handoff: the booted system runs its own. */
export async function stopServices(log: Logger, running: readonly RunningService[]): Promise<string[]> {
  const stopped: string[] = [];
  for (const { name, service } of running) {
    try {
      await service.stop();
      stopped.push(`${name} (pid ${service.pid}) stopped`);
      log.info(`${name} (pid ${service.pid}) stopped`);
    } catch (error) {
      const problem = `Cannot stop ${name} (pid ${service.pid}): ${messageOf(error)}`;
      stopped.push(problem);
      log.error(problem);
    }
  }
  return stopped;
}
