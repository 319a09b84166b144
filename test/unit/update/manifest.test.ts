import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG, MAX_MANIFEST_VALIDITY_DAYS } from "../../../controller/config/schema.ts";
import {
  compareVersions,
  decideUpdate,
  isVersion,
  type MachineIdentity,
  type Manifest,
  MANIFEST_FORMAT_ROLLOUT,
  MANIFEST_MAX_BYTES,
  manifestFormatFor,
  manifestPath,
  parseManifest,
  resolveRepoUrl,
  selectConfigFiles,
  signaturePath,
  type UpdateDecision,
} from "../../../controller/update/manifest.ts";

// --- helpers -----------------------------------------------------------------

const SOURCE = "http://repo/channels/stable/manifest.json";
const HASH_A = "a".repeat(128);
const HASH_B = "b".repeat(128);

function file(name: string, sha512 = HASH_A): { name: string; url: string; size: number; sha512: string } {
  return { name, url: `config/${sha512}.toml`, size: 10, sha512 };
}

/** A valid manifest as JSON data, to break one piece at a time. */
function validInput(): Record<string, any> {
  return {
    format: 1,
    channel: "stable",
    version: "1.2.0",
    created: "2026-11-23T10:00:00.000Z",
    expires: "2026-12-23T10:00:00.000Z",
    image: { url: `images/${HASH_A}.squashfs`, size: 123456, sha512: HASH_A, format: "squashfs" },
    config: {
      fleet: [file("50-fleet.toml"), file("40-base.toml")],
      machines: [
        { mac: "52:54:00:12:34:56", files: [file("60-machine.toml", HASH_B)] },
        { hostname: "lab-07", files: [file("50-fleet.toml", HASH_B)] },
      ],
    },
  };
}

function bytesOf(input: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(input, null, 2));
}

function manifestOf(input: unknown): Manifest {
  const parsed = parseManifest(bytesOf(input), SOURCE);
  if (!parsed.ok) throw new Error(`expected a valid manifest, got ${parsed.problems.join("\n")}`);
  return parsed.manifest;
}

function problemsOfBytes(bytes: Uint8Array): string[] {
  const parsed = parseManifest(bytes, SOURCE);
  if (parsed.ok) throw new Error("expected a refused manifest");
  return parsed.problems.map((problem) => {
    expect(problem).toStartWith(`${SOURCE}: `);
    return problem.slice(SOURCE.length + 2);
  });
}

/** The problems (without the source) of the valid manifest changed by `change`. */
function problemsOf(change: (input: Record<string, any>) => void): string[] {
  const input = validInput();
  change(input);
  return problemsOfBytes(bytesOf(input));
}

// --- parseManifest -------------------------------------------------------------

describe("parseManifest", () => {
  test("a valid manifest; unknown keys are dropped, not refused", () => {
    const input = validInput();
    input["signed_by"] = "someone";
    input["image"]["compression"] = "zstd";
    const manifest = manifestOf(input);
    expect(manifest.version).toBe("1.2.0");
    expect(manifest.config.machines[0]).toEqual({ mac: "52:54:00:12:34:56", files: [file("60-machine.toml", HASH_B)] });
    expect(manifest.config.machines[1]).toEqual({ hostname: "lab-07", files: [file("50-fleet.toml", HASH_B)] });
    expect(Object.keys(manifest)).not.toContain("signed_by");
    expect(Object.keys(manifest.image)).not.toContain("compression");
  });

  test("absolute http(s) URLs are allowed", () => {
    const manifest = manifestOf({ ...validInput(), image: { ...validInput()["image"], url: "https://cdn.example.org/x.squashfs" } });
    expect(manifest.image.url).toBe("https://cdn.example.org/x.squashfs");
  });

  test("an oversized manifest is refused before it is read", () => {
    const bytes = new Uint8Array(MANIFEST_MAX_BYTES + 1).fill(0x20);
    expect(problemsOfBytes(bytes)).toEqual([`Cannot read the manifest: it is ${MANIFEST_MAX_BYTES + 1} bytes, expected at most ${MANIFEST_MAX_BYTES}`]);
  });

  test("invalid UTF-8 is refused, naming the byte", () => {
    const good = bytesOf(validInput());
    for (const [bad, at] of [
      [[0xff], 0],
      [[0xc3], 1], // truncated two-byte sequence: the next byte is not a continuation
      [[0xc0, 0xaf], 0], // overlong "/"
      [[0xed, 0xa0, 0x80], 1], // a UTF-16 surrogate
      [[0xf4, 0x90, 0x80, 0x80], 1], // past U+10FFFF
    ] as const) {
      const bytes = new Uint8Array([...good.slice(0, 20), ...bad, ...good.slice(20)]);
      expect(problemsOfBytes(bytes)[0]).toStartWith(`Cannot read the manifest: it is not UTF-8 (byte ${20 + at} is 0x`);
    }
    expect(problemsOfBytes(new Uint8Array([0x7b, 0xe2, 0x82]))).toEqual(["Cannot read the manifest: it is not UTF-8 (it ends inside a character)"]);
  });

  test("valid multi-byte UTF-8 passes the check", () => {
    const input = validInput();
    input["note"] = "é€😀";
    expect(manifestOf(input).version).toBe("1.2.0");
  });

  test("invalid JSON is refused with its line and column", () => {
    expect(problemsOfBytes(new TextEncoder().encode('{\n  "format": 1,\n  "channel": x\n}'))).toEqual([
      'JSON syntax error at line 3, column 14: Unexpected identifier "x"',
    ]);
    expect(problemsOfBytes(new TextEncoder().encode('{"format": 1,}'))[0]).toStartWith("JSON syntax error at line 1, column 14: ");
    expect(problemsOfBytes(new TextEncoder().encode('{"format": 1'))[0]).toStartWith("JSON syntax error at line 1, column 13: ");
    expect(problemsOfBytes(new TextEncoder().encode(""))[0]).toStartWith("JSON syntax error at line 1, column 1: ");
    expect(problemsOfBytes(new TextEncoder().encode('{"a": "tab\there"}'))[0]).toStartWith("JSON syntax error at line 1, column 7: ");
    expect(problemsOfBytes(new TextEncoder().encode('{"a": [1, 2] "b"}'))[0]).toStartWith("JSON syntax error at line 1, column 14: ");
    expect(problemsOfBytes(new TextEncoder().encode("[1] [2]"))[0]).toStartWith("JSON syntax error at line 1, column 5: ");
  });

  test("deep nesting neither crashes the parser nor the error position", () => {
    const deep = "[".repeat(30000);
    expect(problemsOfBytes(new TextEncoder().encode(deep))[0]).toStartWith("JSON syntax error");
    const closed = `${"[".repeat(30000)}${"]".repeat(30000)}`;
    expect(problemsOfBytes(new TextEncoder().encode(closed))).toHaveLength(1);
  });

  test("JSON that is not an object", () => {
    expect(problemsOfBytes(new TextEncoder().encode("[]"))).toEqual(["expected a JSON object, got an array"]);
    expect(problemsOfBytes(new TextEncoder().encode('"x"'))).toEqual(['expected a JSON object, got "x"']);
    expect(problemsOfBytes(new TextEncoder().encode("null"))).toEqual(["expected a JSON object, got null"]);
  });

  test("an unknown format is refused alone, saying which format is known", () => {
    expect(problemsOf((input) => ((input["format"] = 4), (input["version"] = "bad")))).toEqual([
      "key format: expected 1, 2 or 3 (the manifest formats this controller knows), got 4",
    ]);
    expect(problemsOf((input) => (input["format"] = "1"))).toEqual([
      'key format: expected 1, 2 or 3 (the manifest formats this controller knows), got "1"',
    ]);
    expect(problemsOf((input) => delete input["format"])).toEqual([
      "key format: expected 1, 2 or 3 (the manifest formats this controller knows), got nothing",
    ]);
  });

  test("missing keys are named", () => {
    expect(problemsOf((input) => delete input["version"])).toEqual([
      'key version: expected a version such as "1.2.0" (1 to 4 dot-separated numbers of at most 9 digits, no leading zeros), got nothing',
    ]);
    expect(problemsOf((input) => delete input["image"]["sha512"])).toEqual([
      "key image.sha512: expected 128 lowercase hex characters (a sha512), got nothing",
    ]);
    expect(problemsOf((input) => delete input["config"]["machines"])).toEqual([
      "key config.machines: expected a list of machine entries, got nothing",
    ]);
    expect(problemsOf((input) => delete input["config"])).toEqual(["key config: expected an object with fleet and machines, got nothing"]);
  });

  test("wrong types for each field", () => {
    const cases: [(input: Record<string, any>) => void, string][] = [
      [(input) => (input["channel"] = 1), "key channel: expected a channel name"],
      [(input) => (input["version"] = 1.2), "key version: expected a version"],
      [(input) => (input["created"] = 1700000000), "key created: expected a UTC time"],
      [(input) => (input["expires"] = null), "key expires: expected a UTC time"],
      [(input) => (input["image"] = "images/x.squashfs"), "key image: expected an object with url, size, sha512 and format"],
      [(input) => (input["image"]["url"] = ["x"]), "key image.url: expected a URL relative to the server"],
      [(input) => (input["image"]["size"] = "123456"), "key image.size: expected the image size in bytes: an integer from 1 to 9007199254740991"],
      [(input) => (input["image"]["format"] = "ext4"), 'key image.format: expected "squashfs", got "ext4"'],
      [(input) => (input["config"]["fleet"] = {}), "key config.fleet: expected a list of config files, got an object"],
      [(input) => (input["config"]["fleet"][0] = "50-fleet.toml"), "key config.fleet[0]: expected an object with name, url, size and sha512"],
      [(input) => (input["config"]["fleet"][0]["size"] = true), "key config.fleet[0].size: expected the file size in bytes: an integer from 0 to 65536, got true"],
      [(input) => (input["config"]["machines"][0]["files"] = null), "key config.machines[0].files: expected a list of config files, got null"],
      [(input) => (input["config"]["machines"][1]["hostname"] = 7), "key config.machines[1].hostname: expected a hostname"],
    ];
    for (const [change, start] of cases) {
      const problems = problemsOf(change);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toStartWith(start);
    }
  });

  test("chunks: optional; a chunk size of at least 1 MiB and exactly one sha512 per chunk", () => {
    const chunked = (input: Record<string, any>, size: number, chunkSize: number, count: number) => {
      input["image"]["size"] = size;
      input["image"]["chunks"] = { size: chunkSize, sha512: Array.from({ length: count }, () => HASH_B) };
    };
    expect(manifestOf(validInput()).image.chunks).toBeUndefined();
    const input = validInput();
    chunked(input, 3 * 2 ** 20 + 1, 2 ** 20, 4);
    input["image"]["chunks"]["later"] = "dropped";
    expect(manifestOf(input).image.chunks).toEqual({ size: 2 ** 20, sha512: [HASH_B, HASH_B, HASH_B, HASH_B] });
    // past 2^32 bytes: 257 chunks of 16 MiB
    const large = validInput();
    chunked(large, 2 ** 32 + 1, 16 * 2 ** 20, 257);
    expect(manifestOf(large).image.chunks?.sha512.length).toBe(257);

    expect(problemsOf((input) => chunked(input, 3 * 2 ** 20 + 1, 2 ** 20, 3))).toEqual([
      `key image.chunks.sha512: expected 4 sha512s: the image's ${3 * 2 ** 20 + 1} bytes in chunks of ${2 ** 20}, got 3`,
    ]);
    expect(problemsOf((input) => chunked(input, 3 * 2 ** 20, 2 ** 20, 4))[0]).toEndWith("expected 3 sha512s: the image's 3145728 bytes in chunks of 1048576, got 4");
    expect(problemsOf((input) => chunked(input, 1000, 4096, 1))).toEqual([
      "key image.chunks.size: expected the chunk size in bytes: an integer from 1048576 to 9007199254740991, got 4096",
    ]);
    expect(problemsOf((input) => (input["image"]["chunks"] = { size: 2 ** 20, sha512: ["x"] }))).toEqual([
      'key image.chunks.sha512[0]: expected 128 lowercase hex characters (a sha512), got "x"',
    ]);
    expect(problemsOf((input) => (input["image"]["chunks"] = [HASH_A]))[0]).toStartWith("key image.chunks: expected an object with size and sha512");
    expect(problemsOf((input) => (input["image"]["chunks"] = { size: 2 ** 20 }))[0]).toStartWith("key image.chunks.sha512: expected a list of sha512s");
  });

  test("chunks.sha256: optional beside the sha512s, one 64-hex-character sha256 per chunk", () => {
    const HASH_C = "c".repeat(64);
    const chunked = (input: Record<string, any>, sha256: unknown) => {
      input["image"]["size"] = 2 * 2 ** 20 + 1;
      input["image"]["chunks"] = { size: 2 ** 20, sha512: [HASH_B, HASH_B, HASH_B], sha256 };
    };
    const input = validInput();
    chunked(input, [HASH_C, HASH_C, HASH_C]);
    expect(manifestOf(input).image.chunks).toEqual({ size: 2 ** 20, sha512: [HASH_B, HASH_B, HASH_B], sha256: [HASH_C, HASH_C, HASH_C] });
    expect(problemsOf((input) => chunked(input, [HASH_C, HASH_C]))).toEqual([
      `key image.chunks.sha256: expected 3 sha256s: the image's ${2 * 2 ** 20 + 1} bytes in chunks of ${2 ** 20}, got 2`,
    ]);
    expect(problemsOf((input) => chunked(input, [HASH_C, HASH_C, "C".repeat(64)]))).toEqual([
      `key image.chunks.sha256[2]: expected 64 lowercase hex characters (a sha256), got "${"C".repeat(64)}"`,
    ]);
    expect(problemsOf((input) => chunked(input, [HASH_C, HASH_C, HASH_B]))[0]).toStartWith("key image.chunks.sha256[2]: expected 64 lowercase hex characters (a sha256), got");
    expect(problemsOf((input) => chunked(input, HASH_C))[0]).toStartWith("key image.chunks.sha256: expected a list of sha256s");
    // the sha256s do not stand in for the sha512s, which controllers before them read
    expect(problemsOf((input) => (input["image"]["chunks"] = { size: 2 ** 20, sha256: [HASH_C] }))[0]).toStartWith("key image.chunks.sha512: expected a list of sha512s");
  });

  test("sizes: integers within bounds", () => {
    expect(problemsOf((input) => (input["image"]["size"] = 0))[0]).toEndWith("an integer from 1 to 9007199254740991, got 0");
    expect(problemsOf((input) => (input["image"]["size"] = 1.5))[0]).toEndWith("got 1.5");
    expect(problemsOf((input) => (input["image"]["size"] = 2 ** 53))[0]).toEndWith("got 9007199254740992");
    const huge = new TextDecoder().decode(bytesOf(validInput())).replace('"size": 123456', '"size": 1e400');
    expect(problemsOfBytes(new TextEncoder().encode(huge))[0]).toEndWith("got Infinity");
    expect(problemsOf((input) => (input["config"]["fleet"][0]["size"] = 65537))[0]).toBe(
      "key config.fleet[0].size: expected the file size in bytes: an integer from 0 to 65536, got 65537",
    );
    expect(manifestOf({ ...validInput(), config: { fleet: [{ ...file("a.toml"), size: 0 }], machines: [] } }).config.fleet[0]?.size).toBe(0);
  });

  test("bad sha512: uppercase, short, not hex", () => {
    for (const sha512 of ["A".repeat(128), "a".repeat(127), "a".repeat(129), "g".repeat(128), `${"a".repeat(127)}\n`]) {
      const problems = problemsOf((input) => (input["image"]["sha512"] = sha512));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toStartWith(`key image.sha512: expected 128 lowercase hex characters (a sha512), got ${JSON.stringify(sha512).slice(0, 20)}`);
    }
  });

  test("a long hostile value is cut short in the message", () => {
    const problems = problemsOf((input) => (input["version"] = "9".repeat(50000)));
    expect(problems[0]?.length).toBeLessThan(300);
    expect(problems[0]).toEndWith('..." (50002 characters)');
  });

  test("bad URLs: absolute paths, .., query, fragment, encodings, other schemes", () => {
    for (const url of ["/abs", "../x", "images/../x", "a?b", "a#b", "", "a//b", "./a", "a/", "%2e%2e/x", "..\\x", "a b", "file:///etc/passwd", "javascript:x", "//evil.example/x", "ftp://x/y", "http://"]) {
      const problems = problemsOf((input) => (input["config"]["fleet"][1]["url"] = url));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toStartWith("key config.fleet[1].url: expected a URL relative to the server such as");
      expect(problems[0]).toEndWith(`got ${JSON.stringify(url)}`);
    }
  });

  test("config file names never leave config.d", () => {
    for (const name of ["../x.toml", "a/b.toml", ".hidden.toml", "x.conf", "x.toml.bak", ".toml", "-x.toml", "x .toml", `${"a".repeat(124)}.toml`, "x.TOML", ""]) {
      const problems = problemsOf((input) => (input["config"]["machines"][0]["files"][0]["name"] = name));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toStartWith('key config.machines[0].files[0].name: expected a config.d file name such as "50-fleet.toml"');
    }
    expect(manifestOf({ ...validInput(), config: { fleet: [file(`${"a".repeat(123)}.toml`)], machines: [] } }).config.fleet).toHaveLength(1);
  });

  test("duplicated names within one list are refused; across lists they override", () => {
    expect(problemsOf((input) => input["config"]["fleet"].push(file("50-fleet.toml", HASH_B)))).toEqual([
      'key config.fleet[2].name: expected a name no other file of this list has ([0] has it too), got "50-fleet.toml"',
    ]);
    expect(problemsOf((input) => input["config"]["machines"][0]["files"].push(file("60-machine.toml")))).toEqual([
      'key config.machines[0].files[1].name: expected a name no other file of this list has ([0] has it too), got "60-machine.toml"',
    ]);
  });

  test("a machine entry has exactly one of mac and hostname", () => {
    expect(problemsOf((input) => (input["config"]["machines"][0]["hostname"] = "lab-01"))).toEqual([
      "key config.machines[0]: expected exactly one of mac and hostname, got both",
    ]);
    expect(problemsOf((input) => delete input["config"]["machines"][1]["hostname"])).toEqual([
      "key config.machines[1]: expected exactly one of mac and hostname, got neither",
    ]);
  });

  test("MACs are lowercase; hostnames follow the hostname rule", () => {
    for (const mac of ["52:54:00:12:34:5G", "52:54:00:12:34:5A", "52-54-00-12-34-56", "525400123456", "52:54:00:12:34"]) {
      expect(problemsOf((input) => (input["config"]["machines"][0]["mac"] = mac))[0]).toStartWith(
        'key config.machines[0].mac: expected a MAC address in lowercase such as "52:54:00:12:34:56", got',
      );
    }
    for (const hostname of ["-lab", "lab_07", "lab..x", "lab.", `${"a".repeat(64)}`, "lab 07", ""]) {
      expect(problemsOf((input) => (input["config"]["machines"][1]["hostname"] = hostname))[0]).toStartWith(
        'key config.machines[1].hostname: expected a hostname such as "lab-07"',
      );
    }
  });

  test("channel and version rules", () => {
    for (const channel of ["Stable", "", ".x", "a/b", "a".repeat(65)]) {
      expect(problemsOf((input) => (input["channel"] = channel))[0]).toStartWith("key channel: expected a channel name");
    }
    for (const version of ["01", "1.02", "1.2.3.4.5", "1..2", "v1", "1.2-rc1", "1234567890", "-1", ""]) {
      expect(problemsOf((input) => (input["version"] = version))[0]).toStartWith("key version: expected a version");
    }
  });

  test("timestamps: UTC with Z; real dates; expires after created", () => {
    for (const time of ["2026-11-23T10:00:00+00:00", "2026-11-23 10:00:00Z", "2026-11-23", "2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z", "2026-11-23T25:00:00Z"]) {
      expect(problemsOf((input) => (input["created"] = time))).toEqual([
        `key created: expected a UTC time such as "2026-11-23T10:00:00.000Z", got ${JSON.stringify(time)}`,
      ]);
    }
    expect(problemsOf((input) => (input["expires"] = input["created"]))).toEqual([
      'key expires: expected a time after created (2026-11-23T10:00:00.000Z), got "2026-11-23T10:00:00.000Z"',
    ]);
    expect(manifestOf({ ...validInput(), created: "2026-11-23T10:00:00Z", expires: "2026-11-23T10:00:01.5Z" }).expires).toBe("2026-11-23T10:00:01.5Z");
  });

  test("every problem at once, each naming its key", () => {
    const problems = problemsOf((input) => {
      input["channel"] = "";
      input["image"]["sha512"] = "x";
      input["config"]["fleet"][0]["name"] = "../x.toml";
    });
    expect(problems.map((problem) => problem.split(":")[0])).toEqual(["key channel", "key image.sha512", "key config.fleet[0].name"]);
  });
});

// --- versions ------------------------------------------------------------------

describe("versions", () => {
  test("isVersion", () => {
    for (const version of ["0", "1", "1.2.0", "2026.11.23", "1.2.3.4", "999999999"]) expect(isVersion(version)).toBe(true);
    for (const version of ["", "1.", ".1", "01", "1.2.3.4.5", "1000000000", "1.a", " 1"]) expect(isVersion(version)).toBe(false);
  });

  test("compared numerically, part by part; missing parts are 0", () => {
    const table: [string, string, number][] = [
      ["1.2.0", "1.2.0", 0],
      ["1.2", "1.2.0", 0],
      ["1", "1.0.0.0", 0],
      ["1.10", "1.9", 1],
      ["1.9", "1.10", -1],
      ["2", "1.999999999", 1],
      ["1.2.0.1", "1.2", 1],
      ["2026.11.23", "2026.2.1", 1],
      ["0", "0.0.1", -1],
    ];
    for (const [a, b, order] of table) {
      expect([a, b, compareVersions(a, b)]).toEqual([a, b, order]);
      expect(compareVersions(b, a)).toBe(-order || 0);
    }
  });

  test("comparing a non-version is a mistake said out loud", () => {
    expect(() => compareVersions("1.2", "v1")).toThrow('Cannot compare versions: "v1" is not a version');
  });
});

// --- using a manifest ------------------------------------------------------------

describe("selectConfigFiles", () => {
  const manifest = manifestOf(validInput());
  const names = (machine: MachineIdentity) => selectConfigFiles(manifest, machine).files.map((f) => f.name);

  test("a machine nothing matches gets the fleet files, sorted by name", () => {
    expect(names({ macs: ["52:54:00:00:00:01"], name: "lab-01" })).toEqual(["40-base.toml", "50-fleet.toml"]);
  });

  test("a matching MAC adds its files; MACs compare in lowercase", () => {
    const selection = selectConfigFiles(manifest, { macs: ["52:54:00:00:00:01", "52:54:00:12:34:56".toUpperCase()], name: "" });
    expect(selection.files.map((f) => f.name)).toEqual(["40-base.toml", "50-fleet.toml", "60-machine.toml"]);
    expect(selection.matched).toEqual(["mac 52:54:00:12:34:56"]);
  });

  test("a hostname entry matches the machine's own name; a machine file replaces the fleet file of the same name; names compare case-insensitively", () => {
    const selection = selectConfigFiles(manifest, { macs: [], name: "LAB-07" });
    expect(selection.files).toEqual([file("40-base.toml"), file("50-fleet.toml", HASH_B)]);
    expect(selection).toMatchObject({ matched: ["hostname lab-07"] });
    expect(selection.ignored).toBeUndefined();
  });

  test("a hostname match needs the whole name", () => {
    expect(names({ macs: [], name: "lab-07.example.org" })).toHaveLength(2);
    expect(selectConfigFiles(manifest, { macs: [], name: "lab-0" }).files).toEqual([file("40-base.toml"), file("50-fleet.toml")]);
  });

  test("without a name of its own a machine matches no hostname entry, and the selection says why", () => {
    const selection = selectConfigFiles(manifest, { macs: ["52:54:00:12:34:56"], name: "" });
    expect(selection.files.map((f) => f.name)).toEqual(["40-base.toml", "50-fleet.toml", "60-machine.toml"]);
    expect(selection.matched).toEqual(["mac 52:54:00:12:34:56"]);
    expect(selection.ignored).toBe(
      "hostname entries ignored: no machine name in the local config (update.machine_name); a hostname from DHCP is never used",
    );
  });

  test("no hostname entries: nothing to say about them", () => {
    const macOnly = manifestOf({ ...validInput(), config: { fleet: [], machines: [{ mac: "52:54:00:12:34:56", files: [file("60-machine.toml")] }] } });
    expect(selectConfigFiles(macOnly, { macs: [], name: "" })).toEqual({ files: [], matched: [] });
  });

  test("config.d byte order", () => {
    const sorted = manifestOf({ ...validInput(), config: { fleet: ["b.toml", "a.toml", "B.toml", "10-x.toml", "9-x.toml"].map((name) => file(name)), machines: [] } });
    expect(selectConfigFiles(sorted, { macs: [], name: "" }).files.map((f) => f.name)).toEqual(["10-x.toml", "9-x.toml", "B.toml", "a.toml", "b.toml"]);
  });
});

describe("paths and URLs", () => {
  test("repository-relative paths", () => {
    expect(manifestPath("stable")).toBe("channels/stable/manifest.json");
    expect(signaturePath("stable", HASH_A)).toBe(`channels/stable/signatures/${HASH_A}.sig`);
  });

  test("a channel or hash that could leave its folder is refused", () => {
    expect(() => manifestPath("../x")).toThrow('Cannot use channel "../x"');
    expect(() => manifestPath("")).toThrow("Cannot use channel");
    expect(() => signaturePath("stable", "../../x")).toThrow("Cannot name a signature file");
    expect(() => signaturePath("stable", HASH_A.toUpperCase())).toThrow("Cannot name a signature file");
  });

  test("resolveRepoUrl treats the base as a folder", () => {
    expect(resolveRepoUrl("http://10.0.2.100:8080/", "channels/stable/manifest.json")).toBe("http://10.0.2.100:8080/channels/stable/manifest.json");
    expect(resolveRepoUrl("http://server/repo", "images/x.squashfs")).toBe("http://server/repo/images/x.squashfs");
    expect(resolveRepoUrl("http://server/repo/", "images/x.squashfs")).toBe("http://server/repo/images/x.squashfs");
    expect(resolveRepoUrl("http://server/repo", "https://cdn.example.org/x")).toBe("https://cdn.example.org/x");
  });
});

describe("decideUpdate", () => {
  const manifest = manifestOf(validInput());
  const now = new Date("2026-12-01T00:00:00.000Z");
  /** A machine whose slots have no record, on channel stable, with the default validity cap. */
  const decide = (options: Partial<Parameters<typeof decideUpdate>[0]> = {}) =>
    decideUpdate({ manifest, channel: "stable", installedVersion: undefined, versionFloor: undefined, maxValidityDays: 3650, now, ...options });

  test("newer, same, unknown", () => {
    expect(decide({ installedVersion: "1.1.9", versionFloor: { version: "1.1.9", slot: "SYSFS on /dev/vda1" } })).toEqual({ action: "install" });
    expect(decide({ installedVersion: "1.2.0", versionFloor: { version: "1.2.0", slot: "SYSFS on /dev/vda1" } })).toEqual({ action: "up-to-date" });
    expect(decide({ installedVersion: "1.2" })).toEqual({ action: "up-to-date" });
    expect(decide()).toEqual({ action: "install" });
  });

  test("a downgrade is refused, saying how to roll back", () => {
    expect(decide({ installedVersion: "1.10", versionFloor: { version: "1.10", slot: "SYSFS on /dev/vda1" } })).toEqual({
      action: "refuse",
      reason:
        "Cannot install version 1.2.0 from channel stable: it is lower than the installed version 1.10 " +
        "(to roll back, publish the old image under a new version)",
    });
  });

  test("a version below one any slot holds verified is refused, also when the slot that boots has no record", () => {
    const floor = { version: "1.3", slot: "BACKUPFS on /dev/vda2" };
    const refused: UpdateDecision = {
      action: "refuse",
      reason:
        "Cannot install version 1.2.0 from channel stable: it is lower than version 1.3, verified on BACKUPFS on /dev/vda2 " +
        "(the server replays an old manifest; to roll back, publish the old image under a new version)",
    };
    expect(decide({ versionFloor: floor })).toEqual(refused);
    expect(decide({ installedVersion: "1.1", versionFloor: floor })).toEqual(refused);
    // the floor's own version, or above it, installs: the slot that boots does not run it
    expect(decide({ versionFloor: { version: "1.2", slot: "BACKUPFS on /dev/vda2" } })).toEqual({ action: "install" });
    expect(decide({ installedVersion: "1.1", versionFloor: { version: "1.1.5", slot: "BACKUPFS on /dev/vda2" } })).toEqual({ action: "install" });
  });

  test("an installed version that is not a version cannot rule out a downgrade", () => {
    expect(decide({ installedVersion: "unknown" })).toEqual({
      action: "refuse",
      reason: 'Cannot install version 1.2.0 from channel stable: the installed version "unknown" is not a version, so a downgrade cannot be ruled out',
    });
  });

  test("another channel's manifest is refused", () => {
    expect(decide({ channel: "beta", installedVersion: "1.0" })).toEqual({
      action: "refuse",
      reason: "Cannot install version 1.2.0 from channel stable: this machine follows channel beta",
    });
  });

  test("an expired manifest is refused from its expiry on", () => {
    for (const at of ["2026-12-23T10:00:00.000Z", "2027-06-01T00:00:00.000Z"]) {
      expect(decide({ installedVersion: "1.0", now: new Date(at) })).toEqual({
        action: "refuse",
        reason:
          `Cannot install version 1.2.0 from channel stable: the manifest expired at 2026-12-23T10:00:00.000Z and it is now ${at} ` +
          "(the server is frozen or replays an old manifest, or this machine's clock is wrong)",
      });
    }
    expect(decide({ now: new Date("2026-12-23T09:59:59.999Z") })).toEqual({ action: "install" });
  });

  test("a manifest created in the future is not refused: lab clocks are often wrong", () => {
    expect(decide({ now: new Date("2020-01-01T00:00:00.000Z") })).toEqual({ action: "install" });
  });

  test("a manifest valid for longer than update.max_manifest_validity_days is refused, naming the key", () => {
    // created 2026-11-23T10:00, expires 30 days later
    expect(decide({ maxValidityDays: 30 })).toEqual({ action: "install" });
    expect(decide({ maxValidityDays: 29 })).toEqual({
      action: "refuse",
      reason:
        "Cannot install version 1.2.0 from channel stable: it is valid for 30 days (created 2026-11-23T10:00:00.000Z, expires 2026-12-23T10:00:00.000Z), " +
        "longer than update.max_manifest_validity_days (29) allows",
    });
  });

  test("expires in year 9999 is refused at the default cap, publish's longest expiry is not", () => {
    const forever = manifestOf({ ...validInput(), expires: "9999-12-31T00:00:00.000Z" });
    expect(decide({ manifest: forever, maxValidityDays: MAX_MANIFEST_VALIDITY_DAYS })).toMatchObject({
      action: "refuse",
      reason: expect.stringContaining("longer than update.max_manifest_validity_days (3650) allows"),
    });
    const longest = manifestOf({ ...validInput(), expires: new Date(Date.parse("2026-11-23T10:00:00.000Z") + 3650 * 86_400_000).toISOString() });
    expect(decide({ manifest: longest, maxValidityDays: MAX_MANIFEST_VALIDITY_DAYS })).toEqual({ action: "install" });
    expect(DEFAULT_CONFIG.update.max_manifest_validity_days).toBe(MAX_MANIFEST_VALIDITY_DAYS);
  });
});

// --- rollout (format 3) ------------------------------------------------------------

describe("rollout: format 3 only, a share of the machines from 0 to 100", () => {
  const PERCENT_EXPECTED = "expected the share of machines that take this version: a number from 0 to 100";
  const withRollout = (format: number, rollout: unknown) => (input: Record<string, any>) => {
    input["format"] = format;
    input["rollout"] = rollout;
  };

  test("format 3 carries a rollout; fractional shares are kept", () => {
    expect(MANIFEST_FORMAT_ROLLOUT).toBe(3);
    for (const percent of [0, 2.5, 25, 100]) {
      const input = validInput();
      withRollout(3, { percent })(input);
      expect(manifestOf(input).rollout).toEqual({ percent });
    }
  });

  test("a share that is not a number from 0 to 100 is refused, naming the key", () => {
    const cases: [unknown, string][] = [
      [{ percent: -1 }, "-1"],
      [{ percent: 100.5 }, "100.5"],
      [{ percent: "25" }, '"25"'],
      [{ percent: null }, "null"],
      [{}, "nothing"],
    ];
    for (const [rollout, got] of cases) expect(problemsOf(withRollout(3, rollout))).toEqual([`key rollout.percent: ${PERCENT_EXPECTED}, got ${got}`]);
    expect(problemsOf(withRollout(3, 25))).toEqual([
      "key rollout: expected an object with percent (the share of the channel's machines that take this version, 0 to 100), got 25",
    ]);
    // 1e400 is Infinity to JSON.parse
    const input = validInput();
    withRollout(3, { percent: 1 })(input);
    const bytes = new TextEncoder().encode(JSON.stringify(input).replace('"percent":1', '"percent":1e400'));
    expect(problemsOfBytes(bytes)).toEqual([`key rollout.percent: ${PERCENT_EXPECTED}, got Infinity`]);
  });

  test("formats 1 and 2 never had a rollout: there it is an unknown key, dropped, never trusted", () => {
    for (const format of [1, 2]) {
      const input = validInput();
      withRollout(format, { percent: "not even a number" })(input);
      expect(manifestOf(input).rollout).toBeUndefined();
    }
  });

  test("the format a manifest needs: 3 only for a rollout below 100 %", () => {
    expect(manifestFormatFor({ kernel: false, rolloutPercent: undefined })).toBe(1);
    expect(manifestFormatFor({ kernel: true, rolloutPercent: undefined })).toBe(2);
    expect(manifestFormatFor({ kernel: false, rolloutPercent: 100 })).toBe(1);
    expect(manifestFormatFor({ kernel: true, rolloutPercent: 100 })).toBe(2);
    expect(manifestFormatFor({ kernel: false, rolloutPercent: 0 })).toBe(3);
    expect(manifestFormatFor({ kernel: true, rolloutPercent: 99.9 })).toBe(3);
  });
});
