// Content that kernel command line flags fetch from the network: the script of
// command_url= and the authorized keys of ssh_keys_url=. Either runs as root or
// lets someone in as root, so it counts only with a detached signature at
// URL.sig (`controller sign --purpose command|ssh-keys`) by one of the
// machine's own trusted keys, made for that purpose and that URL path and not
// expired, unless the machine's own config says remote.allow_unsigned for a
// lab network.

import type { Config } from "../config/schema.ts";
import { signatureTargetOf, signatureUrlOf } from "../plans/signature-url.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import { SIGNATURE_MAX_BYTES } from "../update/manifest.ts";
import { type SignaturePurpose, signCommandFor, verifySignature } from "../update/signing.ts";
import { fetchCapped, FetchError } from "./http-fetch.ts";

export type RemoteContent =
  | {
      readonly ok: true;
      readonly bytes: Uint8Array;
      /** the trusted key that signed it; absent when it was taken unsigned (remote.allow_unsigned) */
      readonly signedBy?: string;
    }
  | {
      readonly ok: false;
      /** "unreachable": the content could not be fetched; "refused": fetched, but not signed by a trusted key */
      readonly kind: "unreachable" | "refused";
      readonly problem: string;
    };

export interface TrustPolicy {
  readonly trustedKeys: readonly string[];
  /** remote.allow_unsigned from the machine's own config */
  readonly allowUnsigned: boolean;
}

/**
 * Fetch `url` (at most maxBytes) and, unless unsigned content is allowed, its
 * signature, and check it was made for `purpose` and this URL's path. Never
 * throws: a refusal is a problem that names the URL and why. `config` gives
 * the request time limit and CA bundle.
 */
export async function fetchSignedContent(
  system: System,
  log: Logger,
  config: Config,
  url: string,
  purpose: Extract<SignaturePurpose, "command" | "ssh-keys">,
  maxBytes: number,
  policy: TrustPolicy,
): Promise<RemoteContent> {
  let bytes: Uint8Array;
  try {
    bytes = await fetchCapped(system, config, url, maxBytes);
  } catch (error) {
    return { ok: false, kind: "unreachable", problem: (error as Error).message };
  }
  if (policy.allowUnsigned) {
    log.warn(`taking ${url} without checking a signature: remote.allow_unsigned is true`);
    return { ok: true, bytes };
  }
  const signatureUrl = signatureUrlOf(url);
  let signature: string;
  try {
    signature = Buffer.from(await fetchCapped(system, config, signatureUrl, SIGNATURE_MAX_BYTES)).toString("utf8");
  } catch (error) {
    const why =
      error instanceof FetchError && error.status === 404
        ? `it is not signed: there is no signature at ${signatureUrl} (HTTP 404)`
        : `its signature could not be fetched: ${(error as Error).message}`;
    const sign = signCommandFor(purpose, signatureTargetOf(url));
    return { ok: false, kind: "refused", problem: `Cannot use ${url}: ${why}; sign it with \`${sign}\`, or set remote.allow_unsigned = true for a lab network` };
  }
  const check = verifySignature(bytes, signature, policy.trustedKeys, { purpose, target: signatureTargetOf(url), now: system.wallClock() });
  if (!check.ok) return { ok: false, kind: "refused", problem: `Cannot use ${url}: its signature ${signatureUrl} does not verify: ${check.problem} (update.trusted_keys)` };
  return { ok: true, bytes, signedBy: check.key };
}
