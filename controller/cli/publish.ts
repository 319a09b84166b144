// `controller keygen`, `publish`, `rollout`, `sign` and `verify`: the workstation side of
// updates, as commands. Argument parsing and output live here so main.ts
// stays a list of commands; the work is in update/repository.ts.

import { CONFIG_FILE_MAX_BYTES } from "../update/manifest.ts";
import {
  keygen,
  type MachineConfig,
  publish,
  readRegularFile,
  type RepoCheck,
  resignManifest,
  setRollout,
  type SignFor,
  signFiles,
  verifyManifestFiles,
  verifyRepo,
} from "../update/repository.ts";
import { decodePublicKey, isPublicKeyText } from "../update/signing.ts";

const DEFAULT_EXPIRES_DAYS = 30;
/**
 * A Heddle update stays on BOOTEXT and boots at every boot until it is
 * replaced; an expiry falling due would quietly boot the older installed
 * system instead. Its name in the signature already stops an old update from
 * standing in for a newer one, so it is signed for ten years unless told.
 */
const DEFAULT_HEDDLE_EXPIRES_DAYS = 3650;

/** The lines usage.ts's USAGE shows for these commands. */
export const PUBLISH_USAGE = `  keygen PREFIX        write a new signing key pair: PREFIX.secret (mode 0600) and PREFIX.pub
  publish --repo DIR --channel C --version V --image FILE [--config FILE]...
          [--machine-config mac=AA:BB:CC:DD:EE:FF:FILE | hostname=NAME:FILE]...
          [--expires-days N] [--rollout PERCENT] --key SECRETFILE
                       sign and publish an update into DIR (served as is by any HTTP server);
                       V must be greater than the channel's current version; expires in N days (default ${DEFAULT_EXPIRES_DAYS})
                       the image's kernel, its initrd and /lib/modules/RELEASE, when it has them (/boot/vmlinuz,
                       /boot/initrd.img or Debian's names), are checked and signed too (manifest format 2);
                       --rollout: only PERCENT % of the channel's machines take it, each placed by its machine-id
                       (manifest format 3 below 100, which older controllers refuse)
  rollout --repo DIR --channel C --percent PERCENT --key SECRETFILE
                       sign the channel's current manifest again with a new share of machines (0 to 100);
                       raising it only adds machines; version, image, config and expiry stay as they are
  sign --key SECRETFILE --purpose command|ssh-keys (--url-path /PATH FILE | --served-root DIR FILE...)
          [--expires-days N]
  sign --key SECRETFILE --purpose heddle --version V [--name NAME] [--expires-days N] updates/NAME/SHA512SUMS...
                       write FILE.sig beside each FILE: a signature for that purpose, URL path (as machines
                       fetch it: given, or FILE's path under the served root) or Heddle update (its folder's
                       name unless --name) and version, until N days from now (default ${DEFAULT_EXPIRES_DAYS}, Heddle
                       ${DEFAULT_HEDDLE_EXPIRES_DAYS}); replaces an existing FILE.sig (re-signing)
  sign --key SECRETFILE --repo DIR --channel C
                       sign the channel's current manifest again, bytes unchanged, until it expires
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
    const publicKey = await keygen(prefix, (folder) => print(`Made the folder ${folder}/ (mode 0700) for the key pair.`));
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
    ["--repo", "--channel", "--version", "--image", "--expires-days", "--rollout", "--key"],
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
  const rolloutText = options.get("--rollout")?.[0];
  const rolloutPercent = rolloutText === undefined ? undefined : parsePercent(rolloutText);
  if (rolloutPercent === null) return usageError(`publish: --rollout ${JSON.stringify(rolloutText)}: expected a percentage from 0 to 100 such as 10 or 2.5`);
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
      ...(rolloutPercent === undefined ? {} : { rolloutPercent }),
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
    for (const note of published.notes) print(note);
    return 0;
  } catch (error) {
    fail(`Cannot publish version ${version} to channel ${channel}: ${(error as Error).message}`);
    return 1;
  }
}

/** A percentage as --rollout and --percent take it: a decimal number from 0 to 100; null when it is not one. */
function parsePercent(text: string): number | null {
  if (!/^[0-9]{1,3}(?:\.[0-9]+)?$/.test(text)) return null;
  const percent = Number(text);
  return percent <= 100 ? percent : null;
}

export async function rolloutCommand(args: readonly string[]): Promise<number> {
  const options = parseOptions("rollout", args, ["--repo", "--channel", "--percent", "--key"], []);
  if (typeof options === "string") return usageError(options);
  const missing = requireOptions("rollout", options, ["--repo", "--channel", "--percent", "--key"]);
  if (missing !== undefined) return usageError(missing);
  const one = (name: string): string => options.get(name)?.[0] ?? "";
  const percent = parsePercent(one("--percent"));
  if (percent === null) return usageError(`rollout: --percent ${JSON.stringify(one("--percent"))}: expected a percentage from 0 to 100 such as 50 or 2.5`);
  try {
    const changed = await setRollout({ repo: one("--repo"), channel: one("--channel"), percent, secretKeyFile: one("--key"), now: new Date() });
    for (const warning of changed.warnings) fail(warning);
    if (!changed.ok) {
      for (const problem of changed.problems) fail(problem);
      return 1;
    }
    print(`Signed ${changed.manifestFile} again: version ${changed.manifest.version} of channel ${changed.manifest.channel}, until ${changed.manifest.expires}`);
    for (const note of changed.notes) print(note);
    return 0;
  } catch (error) {
    fail(`Cannot change the rollout of channel ${one("--channel")}: ${(error as Error).message}`);
    return 1;
  }
}

/** A --key value: the key itself, or a file that holds one (a .pub file); weak keys are refused either way. */
async function readTrustedKey(value: string): Promise<string> {
  if (isPublicKeyText(value)) {
    try {
      decodePublicKey(value);
    } catch (error) {
      throw new Error(`Cannot use --key: ${(error as Error).message}`);
    }
    return value.trim();
  }
  const read = await readRegularFile(value, CONFIG_FILE_MAX_BYTES, "CONFIG_FILE_MAX_BYTES");
  if (read.status !== "read") {
    const why = read.status === "missing" ? "there is no such file" : read.problem;
    throw new Error(`Cannot use --key ${value}: it is neither a base64 public key nor a readable file (${why})`);
  }
  const text = new TextDecoder().decode(read.bytes);
  // the file's content stays out of the messages: it may be the secret key, given by mistake
  if (!isPublicKeyText(text)) throw new Error(`Cannot use --key ${value}: the file does not hold a public key (base64 of 32 bytes, as keygen's PREFIX.pub)`);
  try {
    decodePublicKey(text);
  } catch (error) {
    throw new Error(`Cannot use --key ${value}: ${(error as Error).message}`);
  }
  return text.trim();
}

/** `--name VALUE` options first, then the files. */
function splitSignArgs(args: readonly string[]): { options: string[]; files: string[] } {
  let index = 0;
  while (index < args.length && (args[index] ?? "").startsWith("--")) index += 2;
  return { options: args.slice(0, index), files: args.slice(index) };
}

export async function signCommand(args: readonly string[]): Promise<number> {
  const { options: optionArgs, files } = splitSignArgs(args);
  const options = parseOptions("sign", optionArgs, ["--key", "--purpose", "--url-path", "--served-root", "--version", "--name", "--expires-days", "--repo", "--channel"], []);
  if (typeof options === "string") return usageError(options);
  const missingKey = requireOptions("sign", options, ["--key"]);
  if (missingKey !== undefined) return usageError(missingKey);
  const one = (name: string): string | undefined => options.get(name)?.[0];
  const secretKeyFile = one("--key") ?? "";
  const given = (names: readonly string[]) => names.filter((name) => options.has(name));

  if (options.has("--repo") || options.has("--channel")) {
    const others = given(["--purpose", "--url-path", "--served-root", "--version", "--name", "--expires-days"]);
    if (others.length > 0 || files.length > 0) {
      return usageError(`sign: --repo and --channel re-sign a manifest until it expires; they take no FILE and no ${others.join(", ") || "other option"}`);
    }
    const missing = requireOptions("sign", options, ["--repo", "--channel"]);
    if (missing !== undefined) return usageError(missing);
    const result = await resignManifest({ repo: one("--repo") ?? "", channel: one("--channel") ?? "", secretKeyFile, now: new Date() });
    for (const warning of result.warnings) fail(warning);
    if (!result.ok) {
      for (const problem of result.problems) fail(problem);
      return 1;
    }
    print(`Wrote ${result.signatureFile}: version ${result.manifest.version} of channel ${result.manifest.channel}, until ${result.manifest.expires}`);
    return 0;
  }

  const purpose = one("--purpose");
  let signFor: SignFor;
  if (purpose === "command" || purpose === "ssh-keys") {
    const urlPath = one("--url-path");
    const servedRoot = one("--served-root");
    const extra = given(["--version", "--name"]);
    if (extra.length > 0) return usageError(`sign: --purpose ${purpose} takes no ${extra.join(", ")}`);
    if ((urlPath === undefined) === (servedRoot === undefined)) {
      return usageError(`sign: --purpose ${purpose} needs either --url-path /PATH (the path of the URL machines fetch) or --served-root DIR`);
    }
    signFor = urlPath !== undefined ? { purpose, urlPath } : { purpose, servedRoot: servedRoot ?? "" };
  } else if (purpose === "heddle") {
    const extra = given(["--url-path", "--served-root"]);
    if (extra.length > 0) return usageError(`sign: --purpose heddle takes no ${extra.join(", ")}`);
    const version = one("--version");
    if (version === undefined) return usageError("sign: --purpose heddle needs --version V: the version of the system the update boots, shown on the console and in the report");
    const name = one("--name");
    signFor = { purpose, version, ...(name === undefined ? {} : { name }) };
  } else {
    return usageError(`sign: --purpose ${purpose === undefined ? "is missing" : JSON.stringify(purpose)}: expected command, ssh-keys or heddle (or --repo DIR --channel C for a manifest)`);
  }
  if (files.length === 0) return usageError("sign: no FILE to sign");
  const expiresText = one("--expires-days");
  if (expiresText !== undefined && !/^[0-9]+$/.test(expiresText)) return usageError(`sign: --expires-days ${JSON.stringify(expiresText)}: expected a whole number of days`);
  const defaultDays = purpose === "heddle" ? DEFAULT_HEDDLE_EXPIRES_DAYS : DEFAULT_EXPIRES_DAYS;
  const expiresInDays = expiresText === undefined ? defaultDays : Number(expiresText);
  const { signed, problems, warnings } = await signFiles({ secretKeyFile, files, signFor, expiresInDays, now: new Date() });
  for (const warning of warnings) fail(warning);
  for (const { signatureFile, claims } of signed) {
    const version = claims.version === undefined ? "" : `, version ${claims.version}`;
    print(`Wrote ${signatureFile}: for ${claims.purpose} ${claims.target}${version}, until ${claims.expires}`);
  }
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
