// Whether this boot needs the network, and why: the update servers of
// config.d, or a kernel command line flag. boot/network.ts brings it up.

import type { Config } from "../config/schema.ts";

/** Whether the stage runs, why, and whether every interface needs a lease. */
export interface NetworkNeed {
  /** what needs the network: "update.servers", "net", "ssh", ...; empty: the stage has nothing to do */
  readonly reasons: readonly string[];
  /** `net`: a lease on every Ethernet interface, not only on the first that gets one */
  readonly everyInterface: boolean;
}

/** The kernel command line flags that need the network (cmdline.ts reads them). */
export interface NetworkFlags {
  readonly net: boolean;
  readonly ssh: boolean;
  readonly lldpd: boolean;
  readonly sshKeysUrl?: string;
  readonly commandUrl?: string;
}

const NO_FLAGS: NetworkFlags = { net: false, ssh: false, lldpd: false };

/** Pure: what needs the network on this boot. lldpd needs links, not leases, but the stage brings every link up either way. */
export function networkNeed(config: Config, flags: NetworkFlags = NO_FLAGS): NetworkNeed {
  const reasons = [
    config.update.servers.length > 0 && "update.servers",
    flags.net && "net",
    flags.ssh && "ssh",
    flags.lldpd && "lldpd",
    flags.sshKeysUrl !== undefined && "ssh_keys_url=",
    flags.commandUrl !== undefined && "command_url=",
  ].filter((reason): reason is string => reason !== false);
  return { reasons, everyInterface: flags.net };
}
