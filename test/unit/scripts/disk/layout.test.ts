import { describe, expect, test } from "bun:test";
import { parseConfigLayer } from "../../../../controller/config/layers.ts";
import { partitionTableOf, planLayout, slotRoomProblem, updateConfigText } from "../../../../scripts/disk/layout.ts";

describe("planLayout", () => {
  test("BIOS: two equal slots and BOOTEXT fill the disk after the GPTs and the 1 MiB BIOS boot partition", () => {
    expect(planLayout(2048, "bios", 512)).toEqual({
      ok: true,
      partitions: [
        { label: "SYSFS", sizeMiB: 766 },
        { label: "BACKUPFS", sizeMiB: 766 },
        { label: "BOOTEXT", sizeMiB: 513 },
      ],
    });
  });

  test("EFI: the 8 MiB ESP instead; the MiB the halves leave goes to BOOTEXT, so the sizes add up to the disk", () => {
    const layout = planLayout(8192, "efi", 1024);
    if (!layout.ok) throw new Error(layout.problem);
    expect(layout.partitions.map((p) => p.sizeMiB)).toEqual([3579, 3579, 1024]);
    expect(1 + 8 + 1 + layout.partitions.reduce((sum, p) => sum + p.sizeMiB, 0)).toBe(8192);
  });

  test("a disk too small for two slots says how big each would be", () => {
    expect(planLayout(1024, "bios", 1024)).toEqual({
      ok: false,
      problem: "Cannot divide a disk of 1024 MiB: after 3 MiB of GPT and BIOS boot partition and 1024 MiB of BOOTEXT, each slot would get -2 MiB; expected at least 64 MiB (a bigger disk or a smaller --bootext-size)",
    });
  });
});

describe("slotRoomProblem", () => {
  test("an image that fits in 90 % of the slot is fine, a bigger one is refused", () => {
    expect(slotRoomProblem(100, 90 * 1024 * 1024)).toBeUndefined();
    expect(slotRoomProblem(100, 91 * 1024 * 1024)).toBe("Cannot put the image (91 MiB) in a slot of 100 MiB (about 90 MiB usable): expected a bigger disk or a smaller --bootext-size");
  });
});

describe("updateConfigText", () => {
  test("a config.d file the controller's own parser takes, with the servers, channel and keys", () => {
    const text = updateConfigText({ servers: ["http://10.0.2.100:8080/", "https://mirror.lab/"], channel: "stable", keys: ["1cl4zZo9qtIVT3JX+R1LlltZInL8yQV1z4NETU5kmJQ="] });
    const layer = parseConfigLayer("bootext", "60-update.toml", text);
    expect(layer.status).toBe("parsed");
    if (layer.status !== "parsed") return;
    expect(layer.values).toEqual({
      update: { servers: ["http://10.0.2.100:8080/", "https://mirror.lab/"], channel: "stable", trusted_keys: ["1cl4zZo9qtIVT3JX+R1LlltZInL8yQV1z4NETU5kmJQ="] },
    });
  });
});

describe("partitionTableOf", () => {
  const sectors = () => new Uint8Array(1024);
  test("GPT by its header's signature at LBA 1", () => {
    const bytes = sectors();
    bytes.set(new TextEncoder().encode("EFI PART"), 512);
    expect(partitionTableOf(bytes)).toBe("gpt");
  });
  test("an MBR with a partition entry; a boot sector with no entries is no table; zeros are blank", () => {
    const bytes = sectors();
    bytes[510] = 0x55;
    bytes[511] = 0xaa;
    expect(partitionTableOf(bytes)).toBeUndefined();
    bytes[0x1be + 16 + 4] = 0x83;
    expect(partitionTableOf(bytes)).toBe("mbr");
    expect(partitionTableOf(sectors())).toBeUndefined();
  });
});
