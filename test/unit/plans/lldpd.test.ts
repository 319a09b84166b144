import { describe, expect, test } from "bun:test";
import { chassisNameOf } from "../../../controller/plans/lldpd.ts";

describe("lldpd", () => {
  test("the chassis name from lldpcli's keyvalue output", () => {
    expect(chassisNameOf("local-chassis.chassis.mac=7a:b2:53:cf:a3:6a\nlocal-chassis.chassis.name=lab-07\n")).toBe("lab-07");
    expect(chassisNameOf("chassis.name=lab-08")).toBe("lab-08");
    expect(chassisNameOf("local-chassis.chassis.descr=Debian\nlocal-chassis.chassis.name=\n")).toBeUndefined();
    expect(chassisNameOf("lldp.eth0.chassis.name=a-neighbour\n")).toBeUndefined();
    expect(chassisNameOf("")).toBeUndefined();
  });
});
