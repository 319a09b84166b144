// A channel's manifest as `publish` wrote them before images had chunk
// hashes (and chunk indexes), signed again: what a server that has not
// republished still serves.
// The QEMU update scenarios and bench/install.ts install from one.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { manifestPath, signaturePath } from "../controller/update/manifest.ts";
import { decodeSecretKey, sha512Hex, signContent } from "../controller/update/signing.ts";

/** Writes channel `to` (the same as `from` by default) of `repo`: `from`'s manifest without image.chunks and image.index, signed with the key in secretKeyFile. */
export async function publishWithoutChunks(repo: string, secretKeyFile: string, from: string, to = from): Promise<void> {
  const manifest = JSON.parse(await Bun.file(join(repo, manifestPath(from))).text()) as { channel: string; expires: string; image: Record<string, unknown> };
  manifest.channel = to;
  delete manifest.image["chunks"];
  delete manifest.image["index"];
  const bytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const secretKey = decodeSecretKey(await Bun.file(secretKeyFile).text(), secretKeyFile);
  const signature = join(repo, signaturePath(to, sha512Hex(bytes)));
  await mkdir(dirname(signature), { recursive: true });
  await writeFile(signature, signContent(bytes, secretKey, { purpose: "manifest", target: to, expires: manifest.expires }));
  await writeFile(join(repo, manifestPath(to)), bytes);
}
