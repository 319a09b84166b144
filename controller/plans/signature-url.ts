// Where the detached signature of fetched content is, and what it must name
// (boot/remote-content.ts fetches and checks it).

/** Where the detached signature of `url` is: URL + ".sig", as `controller sign` names it beside the file. */
export function signatureUrlOf(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = `${parsed.pathname}.sig`;
  return parsed.href;
}

/** What a signature of `url` must name as its target: the path alone, so every mirror of the file serves one signature. */
export function signatureTargetOf(url: string): string {
  return new URL(url).pathname;
}
