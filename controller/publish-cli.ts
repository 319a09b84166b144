// `controller keygen`, `publish` and `verify`: the workstation side of
// updates, as commands. Argument parsing and output live here so main.ts
// stays a list of commands; the work is in repo.ts.

import { readFile } from "node:fs/promises";
import { decodePublicKey } from "./signing.ts";
import { keygen, type MachineConfig, publish, type RepoCheck, signFiles, verifyManifestFiles, verifyRepo } from "./repo.ts";

const DEFAULT_EXPIRES_DAYS = 30;

/** The lines main.ts's USAGE shows for these commands. */
export const PUBLISH_USAGE = `  keygen PREFIX        write a new signing key pair: PREFIX.secret (mode 0600) and PREFIX.pub
  publish --repo DIR --channel C --version V --image FILE [--config FILE]...
          [--machine-config mac=AA:BB:CC:DD:EE:FF:FILE | hostname=NAME:FILE]...
          [--expires-days N] --key SECRETFILE
                       sign and publish an update into DIR (served as is by any HTTP server);
                       V must be greater than the channel's current version; expires in N days (default ${DEFAULT_EXPIRES_DAYS})
  sign --key SECRETFILE FILE...
                       write FILE.sig beside each FILE: a detached signature a machine checks
                       before it uses what it fetched (command_url=, ssh_keys_url=, Heddle updates)
  verify --repo DIR --channel C --key KEY...
  verify --manifest FILE --signature FILE --key KEY...
                       check a channel (or one manifest) as a controller would; KEY is a base64 public
                       key or a .pub file; prints every problem, exit status 1 if any
`;

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(text: string): void {
  process.stderr.write(`${text}\n`);
}

type Options = Map<string, string[]>;

/**
 * `--name VALUE` pairs; names in `repeated` may come more than once. Returns
 * the options or the one sentence that says what is wrong with the arguments.
 */
function parseOptions(command: string, args: readonly string[], single: readonly string[], repeated: readonly string[]): Options | string {
  const options: Options = new Map();
  for (let index = 0; index < args.length; index += 2) {
    const name = args[index] ?? "";
    const value = args[index + 1];
    if (!single.includes(name) && !repeated.includes(name)) {
      return `${command}: unknown argument ${JSON.stringify(name)}; it takes ${[...single, ...repeated].join(", ")}`;
    }
    if (value === undefined) return `${command}: ${name} needs a value`;
    const values = options.get(name) ?? [];
    if (values.length > 0 && single.includes(name)) return `${command}: ${name} may be given only once`;
    options.set(name, [...values, value]);
  }
  return options;
}

function requireOptions(command: string, options: Options, names: readonly string[]): string | undefined {
  const missing = names.filter((name) => !options.has(name));
  return missing.length === 0 ? undefined : `${command}: missing ${missing.join(", ")}`;
}

function usageError(problem: string): number {
  fail(`${problem}\nUsage:\n${PUBLISH_USAGE}`);
  return 2;
}

export async function keygenCommand(args: readonly string[]): Promise<number> {
  const [prefix] = args;
  if (prefix === undefined || args.length > 1) return usageError(`keygen needs exactly one PREFIX, got ${args.length} arguments`);
  try {
    const publicKey = await keygen(prefix);
    print(`Wrote ${prefix}.secret (keep it secret: it signs updates) and ${prefix}.pub.`);
    print(`Public key, for update.trusted_keys: ${publicKey}`);
    return 0;
  } catch (error) {
    fail((error as Error).message);
    return 1;
  }
}

/** mac=AA:BB:CC:DD:EE:FF:FILE or hostname=NAME:FILE */
function parseMachineConfig(value: string): { selector: string; file: string } | undefined {
  const byMac = /^mac=((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}):(.+)$/.exec(value);
  if (byMac !== null) return { selector: `mac=${(byMac[1] ?? "").toLowerCase()}`, file: byMac[2] ?? "" };
  const byHostname = /^hostname=([^:]+):(.+)$/.exec(value);
  if (byHostname !== null) return { selector: `hostname=${byHostname[1] ?? ""}`, file: byHostname[2] ?? "" };
  return undefined;
}

export async function publishCommand(args: readonly string[]): Promise<number> {
  const options = parseOptions(
    "publish",
    args,
    ["--repo", "--channel", "--version", "--image", "--expires-days", "--key"],
    ["--config", "--machine-config"],
  );
  if (typeof options === "string") return usageError(options);
  const missing = requireOptions("publish", options, ["--repo", "--channel", "--version", "--image", "--key"]);
  if (missing !== undefined) return usageError(missing);
  const one = (name: string): string => options.get(name)?.[0] ?? "";

  // one machine entry per MAC or hostname, its files in the order given
  const byMachine = new Map<string, string[]>();
  for (const value of options.get("--machine-config") ?? []) {
    const parsed = parseMachineConfig(value);
    if (parsed === undefined) {
      return usageError(`publish: --machine-config ${JSON.stringify(value)}: expected mac=AA:BB:CC:DD:EE:FF:FILE or hostname=NAME:FILE`);
    }
    byMachine.set(parsed.selector, [...(byMachine.get(parsed.selector) ?? []), parsed.file]);
  }
  const machineConfig = [...byMachine].map(([selector, files]): MachineConfig => {
    const [kind, name] = selector.split("=") as [string, string];
    return kind === "mac" ? { mac: name, files } : { hostname: name, files };
  });

  const expiresText = options.get("--expires-days")?.[0];
  if (expiresText !== undefined && !/^[0-9]+$/.test(expiresText)) {
    return usageError(`publish: --expires-days ${JSON.stringify(expiresText)}: expected a whole number of days`);
  }
  const version = one("--version");
  const channel = one("--channel");
  try {
    const published = await publish({
      repo: one("--repo"),
      channel,
      version,
      image: one("--image"),
      fleetConfig: options.get("--config") ?? [],
      machineConfig,
      expiresInDays: expiresText === undefined ? DEFAULT_EXPIRES_DAYS : Number(expiresText),
      secretKeyFile: one("--key"),
      now: new Date(),
    });
    for (const warning of published.warnings) fail(warning);
    if (!published.ok) {
      for (const problem of published.problems) fail(problem);
      return 1;
    }
    const { manifest } = published;
    print(
      `Published version ${manifest.version} to channel ${manifest.channel}: ${published.manifestFile}, ` +
        `signed by ${published.publicKey}, expires ${manifest.expires}`,
    );
    return 0;
  } catch (error) {
    fail(`Cannot publish version ${version} to channel ${channel}: ${(error as Error).message}`);
    return 1;
  }
}

/** A --key value: the key itself, or a file that holds one (a .pub file). */
async function readTrustedKey(value: string): Promise<string> {
  try {
    decodePublicKey(value);
    return value.trim();
  } catch {
    // not a key: a file then
  }
  let text: string;
  try {
    text = await readFile(value, "utf8");
  } catch (error) {
    throw new Error(`Cannot use --key ${value}: it is neither a base64 public key nor a readable file (${(error as Error).message})`);
  }
  try {
    decodePublicKey(text);
  } catch {
    // the file's content stays out of the message: it may be the secret key, given by mistake
    throw new Error(`Cannot use --key ${value}: the file does not hold a public key (base64 of 32 bytes, as keygen's PREFIX.pub)`);
  }
  return text.trim();
}

export async function signCommand(args: readonly string[]): Promise<number> {
  const [flag, secretKeyFile, ...files] = args;
  if (flag !== "--key" || secretKeyFile === undefined) return usageError("sign: expected --key SECRETFILE first");
  if (files.length === 0) return usageError("sign: no FILE to sign");
  const { signed, problems, warnings } = await signFiles(secretKeyFile, files);
  for (const warning of warnings) fail(warning);
  for (const file of signed) print(`Wrote ${file}`);
  for (const problem of problems) fail(problem);
  return problems.length === 0 ? 0 : 1;
}

export async function verifyCommand(args: readonly string[]): Promise<number> {
  const options = parseOptions("verify", args, ["--repo", "--channel", "--manifest", "--signature"], ["--key"]);
  if (typeof options === "string") return usageError(options);
  const byRepo = options.has("--repo") || options.has("--channel");
  const byFiles = options.has("--manifest") || options.has("--signature");
  if (byRepo === byFiles) return usageError("verify: give either --repo and --channel, or --manifest and --signature");
  const missing = requireOptions("verify", options, byRepo ? ["--repo", "--channel", "--key"] : ["--manifest", "--signature", "--key"]);
  if (missing !== undefined) return usageError(missing);
  const one = (name: string): string => options.get(name)?.[0] ?? "";

  let trustedKeys: string[];
  try {
    trustedKeys = await Promise.all((options.get("--key") ?? []).map(readTrustedKey));
  } catch (error) {
    fail((error as Error).message);
    return 2;
  }
  const now = new Date();
  const check: RepoCheck = byRepo
    ? await verifyRepo({ repo: one("--repo"), channel: one("--channel"), trustedKeys, now })
    : await verifyManifestFiles({ manifest: one("--manifest"), signature: one("--signature"), trustedKeys, now });
  for (const problem of check.problems) print(problem);
  print(check.summary);
  return check.problems.length === 0 ? 0 : 1;
}
