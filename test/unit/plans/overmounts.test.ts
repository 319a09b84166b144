import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { planOvermount } from "../../../controller/plans/overmounts.ts";

describe("planOvermount", () => {
  const name = { entry: "FILE_etc_a", kind: "file" as const, target: "/etc/a" };
  test("a missing file target gets its folder and an empty file first", () => {
    const plan = planOvermount(name, "/src", { status: "missing", existing: "/etc", missing: ["x", "a"] }, true);
    expect(plan).toEqual({
      steps: [
        { kind: "mkdir", path: "/sysroot/etc/x" },
        { kind: "create-file", path: "/sysroot/etc/x/a" },
        { kind: "mount", request: { kind: "bind", source: "/src", target: "/sysroot/etc/x/a" }, purpose: "overmount FILE_etc_a" },
      ],
      target: "/etc/x/a",
      created: true,
    });
  });

  test("refusals pass through", () => {
    expect(planOvermount(name, "/src", { status: "refused", reason: "no" }, true)).toEqual({ refuse: "no" });
  });

  test("config is not consulted here: the plan is plain data", () => {
    expect(DEFAULT_CONFIG.overmounts.source).toBe("DIRS");
  });
});
