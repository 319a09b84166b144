// A request's body, read only up to a cap. A sender that declares more than
// the cap is refused before a byte of its body is read; one that does not
// declare its length (chunked) is read until it passes the cap, and then the
// rest is never read: the server holds at most the cap plus one chunk.

export type CappedBody =
  | { readonly ok: true; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly status: 400 | 413; readonly problem: string };

export async function readCappedBody(request: Request, maxBytes: number): Promise<CappedBody> {
  const tooLarge = (size: string): CappedBody => ({ ok: false, status: 413, problem: `Cannot take the report: it is ${size} bytes, expected at most ${maxBytes}` });
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d{1,15}$/.test(declared)) return { ok: false, status: 400, problem: `Cannot take the report: expected a Content-Length in bytes, got ${JSON.stringify(declared.slice(0, 40))}` };
    if (Number(declared) > maxBytes) return tooLarge(declared);
  }
  if (request.body === null) return { ok: true, bytes: new Uint8Array() };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      return tooLarge(`more than ${maxBytes}`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return { ok: true, bytes };
}
