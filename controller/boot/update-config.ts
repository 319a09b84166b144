// Stage "server-config": the config.d files an accepted manifest names for this
// machine (the fleet's, then those for its MAC addresses or the name its own
// config gives it, never a hostname from DHCP) are fetched, checked against
// the size and sha512 the manifest signs, and become the "server" config
// layers of this boot. The install stage keeps them on the new slot, so later
// boots without a network use them too.
//
// All or nothing: a machine that got half of its fleet's config could be in a
// state nobody published, so when one file fails, none is used from the
// network, and no install happens.

import { type ConfigLayer, parseConfigLayer } from "../config/layers.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import { CONFIG_FILE_MAX_BYTES, type MachineIdentity, type ManifestFile, resolveRepoUrl, selectConfigFiles } from "../update/manifest.ts";
import { sha512Hex } from "../update/signing.ts";
import { fetchCapped } from "./http-fetch.ts";
import type { AcceptedManifest } from "./update-check.ts";

export interface FetchedConfigFile {
  readonly name: string;
  readonly sha512: string;
  readonly content: Uint8Array;
}

export type ServerConfigResult =
  | {
      readonly status: "fetched";
      readonly files: readonly FetchedConfigFile[];
      readonly layers: readonly ConfigLayer[];
      /** the machine entries that matched, and why hostname entries did not (selectConfigFiles) */
      readonly matched: readonly string[];
      readonly ignored?: string;
    }
  | { readonly status: "failed"; readonly problem: string };

/** The stage as the boot report keeps it: no file contents. */
export type ServerConfigSummary =
  | {
      readonly status: "fetched";
      readonly files: readonly { readonly name: string; readonly sha512: string }[];
      readonly matched: readonly string[];
      readonly ignored?: string;
    }
  | { readonly status: "failed"; readonly problem: string };

export function summarizeServerConfig(result: ServerConfigResult): ServerConfigSummary {
  if (result.status !== "fetched") return result;
  const { files, matched, ignored } = result;
  return { status: "fetched", files: files.map(({ name, sha512 }) => ({ name, sha512 })), matched, ...(ignored === undefined ? {} : { ignored }) };
}

async function fetchOne(system: System, config: Config, server: string, file: ManifestFile): Promise<FetchedConfigFile> {
  const url = resolveRepoUrl(server, file.url);
  const content = await fetchCapped(system, config, url, Math.min(file.size, CONFIG_FILE_MAX_BYTES));
  if (content.length !== file.size) throw new Error(`Cannot use ${url} as ${file.name}: it has ${content.length} bytes, the manifest signs ${file.size}`);
  const hash = sha512Hex(content);
  if (hash !== file.sha512) throw new Error(`Cannot use ${url} as ${file.name}: its sha512 is ${hash.slice(0, 16)}…, the manifest signs ${file.sha512.slice(0, 16)}…`);
  return { name: file.name, sha512: hash, content };
}

export async function runServerConfigStage(
  system: System,
  log: Logger,
  config: Config,
  accepted: AcceptedManifest,
  machine: MachineIdentity,
): Promise<ServerConfigResult> {
  const { files: selected, matched, ignored } = selectConfigFiles(accepted.manifest, machine);
  const selection = { matched, ...(ignored === undefined ? {} : { ignored }) };
  log.info(`machine entries of version ${accepted.manifest.version} that match this machine: ${matched.length === 0 ? "none" : matched.join(", ")}`);
  if (ignored !== undefined) log.info(ignored);
  if (selected.length === 0) {
    log.info(`version ${accepted.manifest.version} names no config files for this machine`);
    return { status: "fetched", files: [], layers: [], ...selection };
  }
  const files: FetchedConfigFile[] = [];
  try {
    for (const file of selected) files.push(await fetchOne(system, config, accepted.server, file));
  } catch (error) {
    const problem = `${(error as Error).message}; no config from the server is used on this boot`;
    log.error(problem);
    return { status: "failed", problem };
  }
  const layers = files.map((file) => parseConfigLayer("server", `server:${file.name}`, new TextDecoder().decode(file.content)));
  log.info(`config files of version ${accepted.manifest.version} for this machine, verified: ${files.map((file) => file.name).join(", ")}`);
  return { status: "fetched", files, layers, ...selection };
}
