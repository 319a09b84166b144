import { describe, expect, test } from "bun:test";
import { parseCmdline } from "../../../controller/config/cmdline.ts";
import { type Config, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { networkNeed } from "../../../controller/plans/network-need.ts";

const SERVER = "http://10.0.2.100:8080";

function configWith(changes: Partial<Config>): Config {
  return { ...DEFAULT_CONFIG, ...changes };
}

describe("networkNeed", () => {
  test("says what needs the network; only net asks for every interface", () => {
    const servers = configWith({ update: { ...DEFAULT_CONFIG.update, servers: [`${SERVER}/`] } });
    expect(networkNeed(DEFAULT_CONFIG)).toEqual({ reasons: [], everyInterface: false });
    expect(networkNeed(servers)).toEqual({ reasons: ["update.servers"], everyInterface: false });
    expect(networkNeed(DEFAULT_CONFIG, parseCmdline("net"))).toEqual({ reasons: ["net"], everyInterface: true });
    expect(networkNeed(servers, parseCmdline(`ssh lldpd ssh_keys_url=${SERVER}/k command_url=${SERVER}/c`))).toEqual({
      reasons: ["update.servers", "ssh", "lldpd", "ssh_keys_url=", "command_url="],
      everyInterface: false,
    });
  });
});
