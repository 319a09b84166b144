import { describe, expect, test } from "bun:test";
import { parseAuthorizedKeys } from "../../../controller/plans/ssh.ts";

const SERVER = "http://10.0.2.100:8080";
const CONFIG_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIConfigKeyConfigKeyConfigKeyConfigKey00 admin@lab";
const URL_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUrlKeyUrlKeyUrlKeyUrlKeyUrlKeyUrlKe0 person@lab";

describe("authorized keys", () => {
  test("key lines are taken; comments and blank lines passed over; bad lines left out, said with their number", () => {
    const parsed = parseAuthorizedKeys(`# lab keys\n\n${URL_KEY}\r\nnot a key\n  ${CONFIG_KEY}  \nssh-rsa !!!\n`, `${SERVER}/keys`);
    expect(parsed.keys).toEqual([URL_KEY, CONFIG_KEY]);
    expect(parsed.problems).toEqual([
      `${SERVER}/keys line 4: expected a public key line such as "ssh-ed25519 AAAAC3Nz... admin@lab", got "not a key"; left out`,
      `${SERVER}/keys line 6: expected a public key line such as "ssh-ed25519 AAAAC3Nz... admin@lab", got "ssh-rsa !!!"; left out`,
    ]);
    expect(parseAuthorizedKeys("", "x")).toEqual({ keys: [], problems: [] });
  });
});
