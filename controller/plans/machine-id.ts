// systemd's machine-id format: what counts as one, and how a new one is made
// from random bytes (boot/machine-id.ts keeps it on BOOTEXT).

/** Pure: the id in a machine-id file, or why it is not one. systemd's format: 32 lowercase hex digits, then a newline. */
export function parseMachineId(text: string): { readonly ok: true; readonly id: string } | { readonly ok: false; readonly problem: string } {
  const id = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (!/^[0-9a-f]{32}$/.test(id)) {
    const shown = text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}…` : JSON.stringify(text);
    return { ok: false, problem: `it holds ${shown}, not a machine-id (32 lowercase hex digits and a newline)` };
  }
  if (/^0+$/.test(id)) return { ok: false, problem: "it holds the all-zero id, which systemd treats as no id" };
  return { ok: true, id };
}

/** Pure: a machine-id from 16 random bytes, as systemd makes one (a version 4 UUID in 32 hex digits). */
export function machineIdFrom(random: Uint8Array): string {
  if (random.length !== 16) throw new Error(`a machine-id needs 16 random bytes, got ${random.length}`);
  const bytes = Uint8Array.from(random);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  return Buffer.from(bytes).toString("hex");
}
