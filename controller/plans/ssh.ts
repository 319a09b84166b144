// The ssh flag's SSH server: which key lines let a person in, and how
// dropbear runs (boot/services.ts starts it).

import { AUTHORIZED_KEY_LINE } from "../config/schema.ts";
import { DROPBEAR_HOST_KEY, TOOLS } from "../system/paths.ts";

export type KeysParse = { readonly keys: readonly string[]; readonly problems: readonly string[] };

/**
 * Pure: the key lines of an authorized_keys text. Blank lines and # comments
 * are passed over; a line that is not "TYPE BASE64 [comment]" is left out and
 * said, naming `source` and the line number, so one bad line costs one key.
 */
export function parseAuthorizedKeys(text: string, source: string): KeysParse {
  const keys: string[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    if (AUTHORIZED_KEY_LINE.test(line)) keys.push(line);
    else {
      const shown = line.length > 40 ? `${JSON.stringify(line.slice(0, 37))}...` : JSON.stringify(line);
      problems.push(`${source} line ${index + 1}: expected a public key line such as "ssh-ed25519 AAAAC3Nz... admin@lab", got ${shown}; left out`);
    }
  });
  return { keys, problems };
}

/** Pure: dropbear's command line: in the foreground (the service is dropbear itself), logging to its log file, keys only. */
export function dropbearArgv(port: number): string[] {
  // -s: no passwords; -j -k: no port forwarding, the login is for looking at this machine
  return [TOOLS.dropbear, "-F", "-E", "-s", "-j", "-k", "-p", String(port), "-r", DROPBEAR_HOST_KEY];
}
