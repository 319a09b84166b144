import { describe, expect, test } from "bun:test";
import { DEFAULT_APPEND, DEFAULT_BOOTEXT_MIB, type ParsedArgs, parseArgs, parseSizeMiB } from "../../../../scripts/disk/args.ts";

const KEY = "1cl4zZo9qtIVT3JX+R1LlltZInL8yQV1z4NETU5kmJQ=";
const OTHER_KEY = "3cl4zZo9qtIVT3JX+R1LlltZInL8yQV1z4NETU5kmJQ=";
const noFiles = () => undefined;
function problemsOf(parsed: ParsedArgs): readonly string[] {
  if (parsed.ok) throw new Error(`expected problems, got the options ${JSON.stringify(parsed.options)}`);
  return parsed.problems;
}
const minimal = ["--target", "disk.img", "--size", "8G", "--repo", "http://repo.lab:8080/", "--key", KEY];

describe("parseSizeMiB", () => {
  test("reads binary units in M, G and T, with or without iB", () => {
    expect(parseSizeMiB("4096M")).toBe(4096);
    expect(parseSizeMiB("8G")).toBe(8192);
    expect(parseSizeMiB("1GiB")).toBe(1024);
    expect(parseSizeMiB("2t")).toBe(2 * 1024 * 1024);
  });
  test("refuses bytes, fractions, zero and words", () => {
    for (const text of ["512", "1.5G", "0G", "big", "-1G", "8K"]) expect(parseSizeMiB(text)).toBeUndefined();
  });
});

describe("parseArgs", () => {
  test("the minimal command: defaults for channel, servers (the repository), firmware, append and BOOTEXT", () => {
    const parsed = parseArgs(minimal, noFiles);
    expect(parsed).toEqual({
      ok: true,
      options: {
        target: "disk.img",
        sizeMiB: 8192,
        repo: "http://repo.lab:8080/",
        channel: "stable",
        keys: [KEY],
        servers: ["http://repo.lab:8080/"],
        firmware: "bios",
        append: DEFAULT_APPEND,
        bootextMiB: DEFAULT_BOOTEXT_MIB,
        configFiles: [],
        force: false,
      },
    });
  });

  test("repeated --key and --server, a key read from its .pub file, efi, kernel pair, force", () => {
    const parsed = parseArgs(
      [...minimal, "--key", "fleet.pub", "--server", "http://a/", "--server", "https://b/", "--firmware", "efi", "--kernel", "vmlinuz", "--initrd", "initrd.img", "--force", "--channel", "lab", "--work", "/scratch", "--config", "30-boot.toml", "--config", "site/50-site.toml"],
      (file) => (file === "fleet.pub" ? `${OTHER_KEY}\n` : undefined),
    );
    if (!parsed.ok) throw new Error(parsed.problems.join("; "));
    expect(parsed.options.keys).toEqual([KEY, OTHER_KEY]);
    expect(parsed.options.servers).toEqual(["http://a/", "https://b/"]);
    expect(parsed.options).toMatchObject({ firmware: "efi", kernel: { kernel: "vmlinuz", initrd: "initrd.img" }, force: true, channel: "lab", work: "/scratch" });
    expect(parsed.options.configFiles).toEqual(["30-boot.toml", "site/50-site.toml"]);
  });

  test("every problem at once, each naming the option and what it expects", () => {
    const parsed = parseArgs(["--size", "huge", "--repo", "ftp://x/", "--key", "nokey.pub", "--firmware", "uboot", "--kernel", "vmlinuz", "--channel", "Stable", "--bogus"], noFiles);
    expect(problemsOf(parsed)).toEqual([
      'Cannot use the argument "--bogus": expected one of --force, --target, --size, --repo, --channel, --key, --server, --firmware, --kernel, --initrd, --append, --bootext-size, --config, --work',
      "Cannot make the disk: --target is missing; expected the disk image file or block device to write",
      'Cannot use --repo "ftp://x/": expected an http:// or https:// URL',
      'Cannot use --server "ftp://x/": expected an http:// or https:// URL',
      'Cannot use --channel "Stable": expected a channel name such as "stable" (lowercase letters, digits, ".", "_", "-")',
      'Cannot use --key "nokey.pub": it is neither a public key\'s text nor a file that can be read',
      'Cannot use --firmware "uboot": expected bios or efi',
      "Cannot use --kernel alone: the kernel and its initramfs go together (--kernel FILE --initrd FILE)",
      'Cannot use --size "huge": expected a size such as 8G or 4096M',
    ]);
  });

  test("a key file that holds something else, a missing value, an option given twice", () => {
    const parsed = parseArgs([...minimal, "--key", "secret", "--target", "other.img", "--append"], () => "SECRETKEY: not a public key");
    expect(problemsOf(parsed)).toEqual([
      'Cannot use --target twice: got "disk.img" and "other.img"',
      "Cannot use --append: it needs a value, got none",
      'Cannot use --key "secret": the file holds "SECRETKEY: not a public key", expected a public key such as `controller keygen` writes to PREFIX.pub',
    ]);
  });

  test("no key at all", () => {
    expect(problemsOf(parseArgs(["--target", "d", "--repo", "http://r/"], noFiles))).toEqual(["Cannot make the disk: --key is missing; expected a trusted public key (its text or the .pub file `controller keygen` wrote)"]);
  });
});
