// The first image, fetched and verified with the controller's own code, as
// its boot does (boot/update-check.ts, update-config.ts, update-install.ts):
// the channel's manifest, its signature by a trusted key, the manifest's
// channel and expiry, the fleet's config files against their signed sha512,
// the image streamed to a file and every piece checked against the signed
// sha512s. The slot folder then holds what the controller's install leaves
// in a slot: the image, controller/config.d/, the image's chunk index (so the
// machine's first update is a delta already), manifest.sig and manifest.json.

import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fetchCapped } from "../../controller/boot/http-fetch.ts";
import { chooseImageSource } from "../../controller/boot/delta-sources.ts";
import { downloadVerifiedImage, newCounters } from "../../controller/boot/image-download.ts";
import { RECORD_CONFIG_DIR, RECORD_INDEX, RECORD_MANIFEST, RECORD_SIGNATURE } from "../../controller/boot/slot-records.ts";
import type { AcceptedManifest } from "../../controller/boot/update-check.ts";
import { runServerConfigStage } from "../../controller/boot/update-config.ts";
import type { Config } from "../../controller/config/schema.ts";
import { LinuxSystem } from "../../controller/system/linux-system.ts";
import { Logger } from "../../controller/system/log.ts";
import { decideUpdate, MANIFEST_MAX_BYTES, type Manifest, manifestPath, parseManifest, resolveRepoUrl, SIGNATURE_MAX_BYTES, signaturePath } from "../../controller/update/manifest.ts";
import { sha512Hex, verifySignature } from "../../controller/update/signing.ts";

export interface FirstImage {
  readonly accepted: AcceptedManifest;
  /** the slot's image file, verified */
  readonly image: string;
}

/** The controller's log lines, on this command's stderr. */
function consoleLogger(): Logger {
  return new Logger({ write: (_priority, line) => console.error(line) }, false, "blank-disk");
}

/** The manifest of `channel` at `repo`, its signature checked against `keys` now, as the check stage does. */
async function fetchManifest(system: LinuxSystem, config: Config, repo: string, keys: readonly string[]): Promise<AcceptedManifest> {
  const channel = config.update.channel;
  const manifestUrl = resolveRepoUrl(repo, manifestPath(channel));
  const manifestBytes = await fetchCapped(system, config, manifestUrl, MANIFEST_MAX_BYTES);
  const signatureUrl = resolveRepoUrl(repo, signaturePath(channel, sha512Hex(manifestBytes)));
  const signature = new TextDecoder().decode(await fetchCapped(system, config, signatureUrl, SIGNATURE_MAX_BYTES));
  const signed = verifySignature(manifestBytes, signature, keys, { purpose: "manifest", target: channel, now: new Date() });
  if (!signed.ok) throw new Error(`Cannot trust ${manifestUrl}: ${signed.problem}`);
  const parsed = parseManifest(manifestBytes, manifestUrl);
  if (!parsed.ok) throw new Error(parsed.problems.join("; "));
  // nothing is installed: only the channel, the expiry and the validity span can refuse it
  const decision = decideUpdate({
    manifest: parsed.manifest,
    channel,
    installedVersion: undefined,
    versionFloor: undefined,
    maxValidityDays: config.update.max_manifest_validity_days,
    now: new Date(),
  });
  if (decision.action === "refuse") throw new Error(`Cannot install ${manifestUrl}: ${decision.reason}`);
  return { server: repo, manifest: parsed.manifest, manifestBytes, signature, key: signed.key };
}

/**
 * Fills `slotDir` as the controller's install leaves a slot: the image as
 * config.slot.image, then the fleet's config files, the signature and the
 * manifest (last, as writeRecords orders them). Machine-specific files are
 * left to the first boot: which machine the disk goes into is not known here.
 */
export async function fetchFirstImage(
  repo: string,
  channel: string,
  keys: readonly string[],
  slotDir: string,
  config: Config,
  /** a refusal that needs only the manifest, before the image is fetched */
  refuse: (manifest: Manifest) => string | undefined,
): Promise<FirstImage> {
  const log = consoleLogger();
  const system = new LinuxSystem(log, config.timeouts.command_seconds * 1000);
  const withChannel: Config = { ...config, update: { ...config.update, channel, trusted_keys: [...keys] } };
  const accepted = await fetchManifest(system, withChannel, repo, keys);
  const { manifest } = accepted;
  log.info(`${repo} publishes version ${manifest.version} of channel ${channel}, signed by ${accepted.key}`);
  const refusal = refuse(manifest);
  if (refusal !== undefined) throw new Error(refusal);

  const configFiles = await runServerConfigStage(system, log, withChannel, accepted, { macs: [], name: "" });
  if (configFiles.status === "failed") throw new Error(configFiles.problem);

  await mkdir(join(slotDir, RECORD_CONFIG_DIR), { recursive: true });
  const image = join(slotDir, config.slot.image);
  const partial = `${image}.partial`;
  const url = resolveRepoUrl(repo, manifest.image.url);
  log.info(`fetching ${url} (${(manifest.image.size / 1e6).toFixed(1)} MB)`);
  const chosen = await chooseImageSource(system, log, withChannel, accepted, url, []);
  const verified = await downloadVerifiedImage(system, log, withChannel, chosen.source, partial, manifest.image, partial, 0, newCounters());
  if (!verified.ok) throw new Error(`Cannot use version ${manifest.version}: ${verified.problem}`);
  await rename(partial, image);
  for (const file of configFiles.files) await writeFile(join(slotDir, RECORD_CONFIG_DIR, file.name), file.content);
  if (chosen.indexBytes !== undefined) await writeFile(join(slotDir, RECORD_INDEX), chosen.indexBytes);
  await writeFile(join(slotDir, RECORD_SIGNATURE), accepted.signature);
  await writeFile(join(slotDir, RECORD_MANIFEST), accepted.manifestBytes);
  log.info(`version ${manifest.version} verified: ${manifest.image.size} bytes, sha512 ${manifest.image.sha512.slice(0, 16)}…`);
  return { accepted, image };
}
