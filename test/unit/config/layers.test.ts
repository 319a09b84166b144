import { describe, expect, test } from "bun:test";
import { checkConfigDir } from "../../../controller/cli/check-config.ts";
import { parseCmdline } from "../../../controller/config/cmdline.ts";
import {
  cmdlineLayers,
  type ConfigFiles,
  type ConfigLayer,
  DEFAULTS_SOURCE,
  type LayerKind,
  loadBootextConfig,
  loadConfigDir,
  loadInitramfsConfig,
  parseConfigLayer,
  resolveConfig,
} from "../../../controller/config/layers.ts";
import { checkConfigLayer, checkMergedConfig, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { FakeSystem, type Tree } from "../../fake-system.ts";

// --- helpers -----------------------------------------------------------------

/** Files on the shared fake machine; paths in `failing` throw that error on every access, as EACCES would. */
function fakeFiles(tree: Tree, failing: Readonly<Record<string, string>> = {}): ConfigFiles {
  const system = new FakeSystem().addTree("/", tree);
  const guard = (path: string): void => {
    const error = failing[path];
    if (error !== undefined) throw new Error(`${error}: ${path}`);
  };
  return {
    lstat: async (path) => (guard(path), system.lstat(path)),
    readdir: async (path) => (guard(path), system.readdir(path)),
    readText: async (path) => (guard(path), system.readText(path)),
  };
}

function layer(text: string, source = "test.toml", kind: LayerKind = "initramfs"): ConfigLayer {
  return parseConfigLayer(kind, source, text);
}

/** The problems of a file that must be rejected. */
function problemsOf(text: string): readonly string[] {
  const parsed = layer(text);
  if (parsed.status !== "rejected") throw new Error(`expected a rejected layer, got ${JSON.stringify(parsed)}`);
  return parsed.problems;
}

function valuesOf(text: string): unknown {
  const parsed = layer(text);
  if (parsed.status !== "parsed") throw new Error(`expected a parsed layer, got ${JSON.stringify(parsed)}`);
  return parsed.values;
}

function override(param: string): ConfigLayer {
  const overrides = parseCmdline(param).configOverrides;
  expect(overrides).toHaveLength(1);
  return cmdlineLayers(overrides)[0] as ConfigLayer;
}

const DEFAULT_PROVENANCE_KEYS = [
  "labels.system",
  "labels.backup",
  "labels.deprived",
  "labels.bootext",
  "slot.image",
  "slot.fs_type",
  "boot.real_init",
  "boot.kernel_switch",
  "timeouts.devices_seconds",
  "timeouts.command_seconds",
  "timeouts.network_seconds",
  "timeouts.server_seconds",
  "timeouts.request_seconds",
  "timeouts.image_min_kib_per_second",
  "timeouts.image_window_seconds",
  "bootext.config_dir",
  "bootext.read_only",
  "overmounts.enabled",
  "overmounts.source",
  "update.servers",
  "update.channel",
  "update.trusted_keys",
  "update.ca_bundle",
  "update.resume_attempts",
  "update.allow_redirect_to_http",
  "update.machine_name",
  "update.max_manifest_validity_days",
  "update.download_window",
  "update.timezone",
  "network.interfaces",
  "health.max_attempts",
  "health.require_clean_shutdown",
  "health.verify_image",
  "health.fsck",
  "health.required_files",
  "health.both_unhealthy",
  "ssh.authorized_keys",
  "ssh.wait_seconds",
  "ssh.port",
  "remote.allow_unsigned",
  "remote.command_timeout_seconds",
  "heddle.updates_dir",
  "heddle.allow_unsigned",
  "heddle.prompt_seconds",
  "diskless.mode",
  "diskless.ram_margin_mib",
  "diskless.dir",
  "fleet.server",
  "fleet.token_file",
  "fleet.ca_bundle",
  'tmpfs."/etc".enabled',
  'tmpfs."/etc".size',
  'tmpfs."/etc".mode',
  'tmpfs."/etc".seed_from_image',
  'tmpfs."/var/log".enabled',
  'tmpfs."/var/log".size',
  'tmpfs."/var/log".mode',
  'tmpfs."/var/log".seed_from_image',
  'tmpfs."/tmp".enabled',
  'tmpfs."/tmp".size',
  'tmpfs."/tmp".mode',
  'tmpfs."/tmp".seed_from_image',
];

// --- the defaults ------------------------------------------------------------

describe("the built-in defaults", () => {
  test("pass the full schema: every value its key's check, and the rule across keys", () => {
    expect(checkConfigLayer(DEFAULT_CONFIG)).toEqual({ ok: true, value: DEFAULT_CONFIG });
    expect(checkMergedConfig(DEFAULT_CONFIG)).toEqual({ ok: true, value: DEFAULT_CONFIG });
  });

  test("the rule across keys: two roles on one label, in the words of a whole check", () => {
    const clash = { ...DEFAULT_CONFIG, labels: { ...DEFAULT_CONFIG.labels, deprived: "SYSFS", bootext: "BACKUPFS" } };
    expect(checkMergedConfig(clash)).toEqual({
      ok: false,
      problems: ['key labels.deprived: expected a label different from labels.system, got "SYSFS"', 'key labels.bootext: expected a label different from labels.backup, got "BACKUPFS"'],
    });
  });

  test("are the result when there is no layer, every key from the defaults", () => {
    const resolved = resolveConfig([]);
    expect(resolved.config).toEqual(DEFAULT_CONFIG);
    expect(resolved.provenance).toEqual(Object.fromEntries(DEFAULT_PROVENANCE_KEYS.map((key) => [key, DEFAULTS_SOURCE])));
    expect(resolved.layers).toEqual([{ kind: "defaults", source: "built-in defaults", status: "applied", problems: [] }]);
    expect(resolved.problems).toEqual([]);
  });

  test("are not changed by resolving layers over them", () => {
    const before = structuredClone(DEFAULT_CONFIG);
    resolveConfig([layer('labels.system = "OTHER"\n[tmpfs."/srv"]\nsize = "1g"\nmode = "0700"\n[tmpfs."/etc"]\nsize = "1m"')]);
    expect(DEFAULT_CONFIG).toEqual(before);
  });
});

// --- one file ----------------------------------------------------------------

describe("parseConfigLayer", () => {
  test("an empty file or one with only comments is valid and sets nothing", () => {
    for (const text of ["", "\n\n", "# nothing here\n", "[timeouts]\n# devices_seconds = 30\n"]) {
      const parsed = layer(text);
      expect(parsed.status).toBe("parsed");
      const resolved = resolveConfig([parsed]);
      expect(resolved.config).toEqual(DEFAULT_CONFIG);
      expect(Object.values(resolved.provenance).every((source) => source === DEFAULTS_SOURCE)).toBe(true);
    }
  });

  test("a valid file gives exactly what it sets", () => {
    expect(
      valuesOf(
        '[labels]\nsystem = "A"\n[timeouts]\ncommand_seconds = 3600\n[tmpfs."/var/log"]\nsize = "128m"\n[bootext]\nread_only = true\n',
      ),
    ).toEqual({ labels: { system: "A" }, timeouts: { command_seconds: 3600 }, tmpfs: { "/var/log": { size: "128m" } }, bootext: { read_only: true } });
    expect(valuesOf("\uFEFFboot.real_init = '/usr/lib/systemd/systemd'\r\n")).toEqual({
      boot: { real_init: "/usr/lib/systemd/systemd" },
    });
  });

  describe("TOML syntax errors name the line and column", () => {
    const cases: [string, string][] = [
      ["[timeouts]\ndevices_seconds = \n", "test.toml: TOML syntax error at line 2, column 19: invalid value"],
      [
        "[timeouts]\ndevices_seconds = 1\ndevices_seconds = 2\n",
        "test.toml: TOML syntax error at line 3, column 1: trying to redefine an already defined table or value",
      ],
      [
        "[timeouts]\ndevices_seconds = 99999999999999999999\n",
        "test.toml: TOML syntax error at line 2, column 19: integer value cannot be represented losslessly",
      ],
      ["[labels\n", "test.toml: TOML syntax error at line 1, column 8: illegal character in key"],
    ];
    for (const [text, problem] of cases) {
      test(JSON.stringify(text), () => {
        expect(problemsOf(text)).toEqual([problem]);
      });
    }
    for (const text of ['labels.system = "unterminated\n', "\u0000 = 1", "a = 1 b = 2", "[x"]) {
      test(JSON.stringify(text), () => {
        const problems = problemsOf(text);
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(/^test\.toml: TOML syntax error at line 1, column \d+: \S/);
      });
    }
  });

  test("text that is not UTF-8 is rejected with its line", () => {
    // what readText makes of invalid bytes
    const text = new TextDecoder().decode(new Uint8Array([0x23, 0x0a, 0x61, 0x20, 0x3d, 0x20, 0x22, 0xff, 0xfe, 0x22, 0x0a]));
    expect(problemsOf(text)).toEqual(["test.toml: expected UTF-8 text, got invalid bytes on line 2"]);
  });

  describe("bad values name the file, the key, what was expected and what it got", () => {
    const INTEGER = "expected an integer from 1 to 3600";
    const SIZE =
      'expected a tmpfs size such as "64m", "2g" or "50%" (digits with an optional k, m or g; or 1 to 100 then %)';
    const MODE = 'expected an octal mode as a string such as "0755" (3 or 4 digits from 0 to 7)';
    const IMAGE = 'expected a relative path such as "system.squashfs" (no leading /, no "." or ".." parts, no empty parts)';
    const MOUNT_POINT =
      'expected a normalised absolute path other than "/" as the mount point, such as "/var/log" (no //, no trailing /, no "." or ".." parts)';
    const INIT = 'expected a normalised absolute path such as "/sbin/init" (no //, no trailing /, no "." or ".." parts)';
    const LABEL = 'expected a filesystem label such as "SYSFS" (not empty, no control characters)';
    const cases: [string, string][] = [
      ['timeouts.devices_seconds = "ten"', `key timeouts.devices_seconds: ${INTEGER}, got "ten"`],
      ["timeouts.devices_seconds = -5", `key timeouts.devices_seconds: ${INTEGER}, got -5`],
      ["timeouts.devices_seconds = 0", `key timeouts.devices_seconds: ${INTEGER}, got 0`],
      ["timeouts.devices_seconds = 3601", `key timeouts.devices_seconds: ${INTEGER}, got 3601`],
      ["timeouts.command_seconds = 1.5", `key timeouts.command_seconds: ${INTEGER}, got 1.5`],
      ["timeouts.command_seconds = 1e10", `key timeouts.command_seconds: ${INTEGER}, got 10000000000`],
      ["timeouts.command_seconds = inf", `key timeouts.command_seconds: ${INTEGER}, got inf`],
      ["timeouts.command_seconds = -inf", `key timeouts.command_seconds: ${INTEGER}, got -inf`],
      ["timeouts.command_seconds = nan", `key timeouts.command_seconds: ${INTEGER}, got nan`],
      ["timeouts.command_seconds = true", `key timeouts.command_seconds: ${INTEGER}, got true`],
      ["timeouts.command_seconds = [1]", `key timeouts.command_seconds: ${INTEGER}, got an array`],
      ["timeouts.command_seconds = 1979-05-27", `key timeouts.command_seconds: ${INTEGER}, got the date 1979-05-27`],
      ["timeouts.command_seconds = {}", `key timeouts.command_seconds: ${INTEGER}, got a table`],
      ['bootext.read_only = "yes"', 'key bootext.read_only: expected true or false, got "yes"'],
      ["overmounts.enabled = 1", "key overmounts.enabled: expected true or false, got 1"],
      ['slot.image = "../system.squashfs"', `key slot.image: ${IMAGE}, got "../system.squashfs"`],
      ['slot.image = "a/../../b"', `key slot.image: ${IMAGE}, got "a/../../b"`],
      ['slot.image = "/system.squashfs"', `key slot.image: ${IMAGE}, got "/system.squashfs"`],
      ['slot.image = "./system.squashfs"', `key slot.image: ${IMAGE}, got "./system.squashfs"`],
      ['slot.image = "a//b"', `key slot.image: ${IMAGE}, got "a//b"`],
      ['update.machine_name = "lab_07"', 'key update.machine_name: expected a host name such as "lab-07" or "lab-07.example.org", or "" for none, got "lab_07"'],
      ["update.max_manifest_validity_days = 3651", "key update.max_manifest_validity_days: expected an integer from 1 to 3650, got 3651"],
      [
        'update.download_window = "22:00-22:00"',
        'key update.download_window: expected "" for no window (downloads at any time) or "HH:MM-HH:MM" in 24-hour time such as "22:00-06:00" (the end may be past midnight; start and end differ), got "22:00-22:00"',
      ],
      [
        'update.download_window = "10pm-6am"',
        'key update.download_window: expected "" for no window (downloads at any time) or "HH:MM-HH:MM" in 24-hour time such as "22:00-06:00" (the end may be past midnight; start and end differ), got "10pm-6am"',
      ],
      ['update.timezone = "Europe/Berlim"', 'key update.timezone: expected a time zone such as "UTC" or "Europe/Berlin" (an IANA name the controller knows), got "Europe/Berlim"'],
      ['slot.image = ""', `key slot.image: ${IMAGE}, got ""`],
      ['slot.image = "a\\nb"', `key slot.image: ${IMAGE}, got "a\\nb"`],
      [
        'bootext.config_dir = "../etc"',
        'key bootext.config_dir: expected a relative path such as "config.d" (no leading /, no "." or ".." parts, no empty parts), got "../etc"',
      ],
      [
        'overmounts.source = "DIRS/"',
        'key overmounts.source: expected a relative path such as "DIRS" (no leading /, no "." or ".." parts, no empty parts), got "DIRS/"',
      ],
      ['slot.fs_type = "EXT4"', 'key slot.fs_type: expected a filesystem type such as "ext4", got "EXT4"'],
      ['slot.fs_type = "ext4,loop"', 'key slot.fs_type: expected a filesystem type such as "ext4", got "ext4,loop"'],
      ['boot.real_init = "sbin/init"', `key boot.real_init: ${INIT}, got "sbin/init"`],
      ['boot.real_init = "/sbin//init"', `key boot.real_init: ${INIT}, got "/sbin//init"`],
      ['boot.real_init = "/sbin/init/"', `key boot.real_init: ${INIT}, got "/sbin/init/"`],
      ['boot.real_init = "/"', `key boot.real_init: ${INIT}, got "/"`],
      ['boot.kernel_switch = "kexc"', 'key boot.kernel_switch: expected one of "kexec", "reboot" or "off", got "kexc"'],
      ["boot.kernel_switch = true", 'key boot.kernel_switch: expected one of "kexec", "reboot" or "off", got true'],
      ['labels.system = ""', `key labels.system: ${LABEL}, got ""`],
      ['labels.bootext = "A\\tB"', `key labels.bootext: ${LABEL}, got "A\\tB"`],
      ["labels.backup = 7", `key labels.backup: ${LABEL}, got 7`],
      ['[tmpfs."/etc"]\nsize = "64"', ""],
      ['[tmpfs."/etc"]\nsize = "64x"', `key tmpfs."/etc".size: ${SIZE}, got "64x"`],
      ['[tmpfs."/etc"]\nsize = "0"', `key tmpfs."/etc".size: ${SIZE}, got "0"`],
      ['[tmpfs."/etc"]\nsize = "064m"', `key tmpfs."/etc".size: ${SIZE}, got "064m"`],
      ['[tmpfs."/etc"]\nsize = "1.5g"', `key tmpfs."/etc".size: ${SIZE}, got "1.5g"`],
      ['[tmpfs."/etc"]\nsize = "-1m"', `key tmpfs."/etc".size: ${SIZE}, got "-1m"`],
      ['[tmpfs."/etc"]\nsize = "101%"', `key tmpfs."/etc".size: ${SIZE}, got "101%"`],
      ['[tmpfs."/etc"]\nsize = "0%"', `key tmpfs."/etc".size: ${SIZE}, got "0%"`],
      ['[tmpfs."/etc"]\nsize = "50 %"', `key tmpfs."/etc".size: ${SIZE}, got "50 %"`],
      ['[tmpfs."/etc"]\nsize = "1t"', `key tmpfs."/etc".size: ${SIZE}, got "1t"`],
      ['[tmpfs."/etc"]\nsize = ""', `key tmpfs."/etc".size: ${SIZE}, got ""`],
      ['[tmpfs."/etc"]\nsize = 64', `key tmpfs."/etc".size: ${SIZE}, got 64`],
      ['[tmpfs."/etc"]\nmode = 755', `key tmpfs."/etc".mode: ${MODE}, got 755`],
      ['[tmpfs."/etc"]\nmode = "0758"', `key tmpfs."/etc".mode: ${MODE}, got "0758"`],
      ['[tmpfs."/etc"]\nmode = "07555"', `key tmpfs."/etc".mode: ${MODE}, got "07555"`],
      ['[tmpfs."/etc"]\nmode = "75"', `key tmpfs."/etc".mode: ${MODE}, got "75"`],
      ['[tmpfs."/etc"]\nmode = "rwx"', `key tmpfs."/etc".mode: ${MODE}, got "rwx"`],
      ['[tmpfs."/etc"]\nenabled = "false"', 'key tmpfs."/etc".enabled: expected true or false, got "false"'],
      ['[tmpfs.etc]\nsize = "1m"', `key tmpfs.etc: ${MOUNT_POINT}, got "etc"`],
      ['[tmpfs."/"]\nsize = "1m"', `key tmpfs."/": ${MOUNT_POINT}, got "/"`],
      ['[tmpfs."/a/../b"]\nsize = "1m"', `key tmpfs."/a/../b": ${MOUNT_POINT}, got "/a/../b"`],
      ['[tmpfs."/a/./b"]\nsize = "1m"', `key tmpfs."/a/./b": ${MOUNT_POINT}, got "/a/./b"`],
      ['[tmpfs."/var/log/"]\nsize = "1m"', `key tmpfs."/var/log/": ${MOUNT_POINT}, got "/var/log/"`],
      ['[tmpfs."//var"]\nsize = "1m"', `key tmpfs."//var": ${MOUNT_POINT}, got "//var"`],
      ['[tmpfs.""]\nsize = "1m"', `key tmpfs."": ${MOUNT_POINT}, got ""`],
      // wrong types for whole tables
      ["timeouts = 5", "key timeouts: expected a table, got 5"],
      ['labels = "SYSFS"', 'key labels: expected a table, got "SYSFS"'],
      ["tmpfs = []", "key tmpfs: expected a table, got an array"],
      ['tmpfs."/srv" = "1g"', 'key tmpfs."/srv": expected a table, got "1g"'],
      // unknown keys
      ["verbose = true", "key verbose: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs"],
      ["[label]\nsystem = 'X'", "key label: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs"],
      ["timeouts.device_seconds = 3", "key timeouts.device_seconds: unknown key; [timeouts] has devices_seconds, command_seconds, network_seconds, server_seconds, request_seconds, image_min_kib_per_second, image_window_seconds"],
      ["labels.root = 'X'", "key labels.root: unknown key; [labels] has system, backup, deprived, bootext"],
      ["[boot]\ninit = '/x'", "key boot.init: unknown key; [boot] has real_init, kernel_switch"],
      [
        '[tmpfs."/etc"]\nsise = "1m"',
        'key tmpfs."/etc".sise: unknown key; [tmpfs."/etc"] has enabled, size, mode, seed_from_image',
      ],
      ['"__proto__" = 1', 'key __proto__: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs'],
      ["[timeouts.nested]\nx = 1", "key timeouts.nested: unknown key; [timeouts] has devices_seconds, command_seconds, network_seconds, server_seconds, request_seconds, image_min_kib_per_second, image_window_seconds"],
    ];
    for (const [text, problem] of cases) {
      if (problem === "") {
        test(`${JSON.stringify(text)} is valid`, () => {
          expect(layer(text).status).toBe("parsed");
        });
        continue;
      }
      test(JSON.stringify(text), () => {
        expect(problemsOf(text)).toEqual([`test.toml: ${problem}`]);
      });
    }
  });

  test("every problem of a file is told, not only the first", () => {
    expect(
      problemsOf(
        [
          "bogus = 1",
          "[timeouts]",
          'devices_seconds = "ten"',
          "command_seconds = 0",
          "extra = 1",
          '[tmpfs."etc"]',
          'size = "1m"',
          '[tmpfs."/tmp"]',
          'mode = "9"',
        ].join("\n"),
      ),
    ).toEqual([
      'test.toml: key timeouts.devices_seconds: expected an integer from 1 to 3600, got "ten"',
      "test.toml: key timeouts.command_seconds: expected an integer from 1 to 3600, got 0",
      "test.toml: key timeouts.extra: unknown key; [timeouts] has devices_seconds, command_seconds, network_seconds, server_seconds, request_seconds, image_min_kib_per_second, image_window_seconds",
      'test.toml: key tmpfs.etc: expected a normalised absolute path other than "/" as the mount point, such as "/var/log" (no //, no trailing /, no "." or ".." parts), got "etc"',
      'test.toml: key tmpfs."/tmp".mode: expected an octal mode as a string such as "0755" (3 or 4 digits from 0 to 7), got "9"',
      "test.toml: key bogus: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs",
    ]);
  });

  test("good values at the edges are accepted", () => {
    expect(
      valuesOf(
        [
          "[timeouts]",
          "devices_seconds = 1",
          "command_seconds = 3600",
          "[slot]",
          'image = "images/v2/system.squashfs"',
          'fs_type = "fuse.sshfs"',
          '[tmpfs."/a"]',
          'size = "1%"',
          'mode = "000"',
          '[tmpfs."/b"]',
          'size = "100%"',
          'mode = "7777"',
          '[tmpfs."/c"]',
          'size = "2G"',
          'mode = "0700"',
          '[tmpfs."/.hidden/..x"]',
          'size = "123456"',
          'mode = "700"',
        ].join("\n"),
      ),
    ).toEqual({
      timeouts: { devices_seconds: 1, command_seconds: 3600 },
      slot: { image: "images/v2/system.squashfs", fs_type: "fuse.sshfs" },
      tmpfs: {
        "/a": { size: "1%", mode: "000" },
        "/b": { size: "100%", mode: "7777" },
        "/c": { size: "2G", mode: "0700" },
        "/.hidden/..x": { size: "123456", mode: "700" },
      },
    });
  });
});

// --- resolving layers --------------------------------------------------------

describe("resolveConfig", () => {
  test("later layers win key by key, and provenance names the winner", () => {
    const resolved = resolveConfig([
      layer("timeouts.devices_seconds = 10\ntimeouts.command_seconds = 20", "initramfs:/etc/controller/config.d/10-a.toml"),
      layer("timeouts.devices_seconds = 11", "initramfs:/etc/controller/config.d/20-b.toml"),
    ]);
    expect(resolved.config.timeouts).toEqual({ devices_seconds: 11, command_seconds: 20, network_seconds: 20, server_seconds: 15, request_seconds: 30, image_min_kib_per_second: 64, image_window_seconds: 60 });
    expect(resolved.provenance["timeouts.devices_seconds"]).toBe("initramfs:/etc/controller/config.d/20-b.toml");
    expect(resolved.provenance["timeouts.command_seconds"]).toBe("initramfs:/etc/controller/config.d/10-a.toml");
    expect(resolved.provenance["labels.system"]).toBe(DEFAULTS_SOURCE);
  });

  test("precedence is by kind whatever the order given: initramfs < bootext < server < cmdline", () => {
    const initramfs = layer("timeouts.devices_seconds = 1\nlabels.system = 'I'\nslot.image = 'i'\nboot.real_init = '/i'", "initramfs:x", "initramfs");
    const bootext = layer("timeouts.devices_seconds = 2\nlabels.system = 'B'\nslot.image = 'b'", "bootext:x", "bootext");
    const server = layer("timeouts.devices_seconds = 3\nlabels.system = 'S'", "server:x", "server");
    const cmdline = override("controller.timeouts.devices_seconds=4");
    for (const order of [
      [initramfs, bootext, server, cmdline],
      [cmdline, server, bootext, initramfs],
      [bootext, cmdline, initramfs, server],
    ]) {
      const resolved = resolveConfig(order);
      expect(resolved.config.timeouts.devices_seconds).toBe(4);
      expect(resolved.config.labels.system).toBe("S");
      expect(resolved.config.slot.image).toBe("b");
      expect(resolved.config.boot.real_init).toBe("/i");
      expect(resolved.provenance).toMatchObject({
        "timeouts.devices_seconds": "cmdline:controller.timeouts.devices_seconds",
        "labels.system": "server:x",
        "slot.image": "bootext:x",
        "boot.real_init": "initramfs:x",
      });
      expect(resolved.layers.map((record) => record.source)).toEqual([
        DEFAULTS_SOURCE,
        "initramfs:x",
        "bootext:x",
        "server:x",
        "cmdline:controller.timeouts.devices_seconds",
      ]);
    }
  });

  test("layers of one kind keep the order they were given in", () => {
    const resolved = resolveConfig([
      layer("labels.system = 'SECOND'", "bootext:config.d/20.toml", "bootext"),
      layer("labels.system = 'FIRST'", "initramfs:10.toml", "initramfs"),
      layer("labels.system = 'THIRD'", "bootext:config.d/30.toml", "bootext"),
    ]);
    expect(resolved.config.labels.system).toBe("THIRD");
  });

  test("the BOOTEXT layers can be added later and resolved again", () => {
    const early = [
      layer("timeouts.devices_seconds = 5", "initramfs:10.toml", "initramfs"),
      ...cmdlineLayers(parseCmdline("controller.labels.system=CMD").configOverrides),
    ];
    const first = resolveConfig(early);
    expect(first.config.labels.system).toBe("CMD");
    const bootext = [layer("labels.system = 'BX'\ntimeouts.devices_seconds = 6", "bootext:config.d/20.toml", "bootext")];
    const second = resolveConfig([...early, ...bootext]);
    expect(second.config.labels.system).toBe("CMD");
    expect(second.config.timeouts.devices_seconds).toBe(6);
    expect(second.layers.map((record) => record.source)).toEqual([
      DEFAULTS_SOURCE,
      "initramfs:10.toml",
      "bootext:config.d/20.toml",
      "cmdline:controller.labels.system",
    ]);
  });

  test("a rejected layer changes nothing and leaves the other layers applied", () => {
    const resolved = resolveConfig([
      layer("timeouts.devices_seconds = 7", "a.toml"),
      layer("timeouts.devices_seconds = 8\ntimeouts.command_seconds = 'x'", "b.toml"),
      layer("labels.system = 'C'", "c.toml"),
    ]);
    expect(resolved.config.timeouts).toEqual({ devices_seconds: 7, command_seconds: 120, network_seconds: 20, server_seconds: 15, request_seconds: 30, image_min_kib_per_second: 64, image_window_seconds: 60 });
    expect(resolved.config.labels.system).toBe("C");
    expect(resolved.provenance["timeouts.devices_seconds"]).toBe("a.toml");
    expect(resolved.layers.map((record) => [record.source, record.status])).toEqual([
      [DEFAULTS_SOURCE, "applied"],
      ["a.toml", "applied"],
      ["b.toml", "rejected"],
      ["c.toml", "applied"],
    ]);
    expect(resolved.problems).toEqual([
      'b.toml: key timeouts.command_seconds: expected an integer from 1 to 3600, got "x"',
    ]);
  });

  describe("tmpfs entries", () => {
    test("a key of an existing entry changes only that key", () => {
      const resolved = resolveConfig([layer('[tmpfs."/var/log"]\nsize = "128m"', "a.toml")]);
      expect(resolved.config.tmpfs["/var/log"]).toEqual({ enabled: true, size: "128m", mode: "0755", seed_from_image: false });
      expect(resolved.provenance['tmpfs."/var/log".size']).toBe("a.toml");
      expect(resolved.provenance['tmpfs."/var/log".mode']).toBe(DEFAULTS_SOURCE);
    });

    test("a default entry can be disabled", () => {
      const resolved = resolveConfig([layer('[tmpfs."/tmp"]\nenabled = false', "a.toml")]);
      expect(resolved.config.tmpfs["/tmp"]?.enabled).toBe(false);
    });

    test("a new entry with size and mode gets enabled = true and seed_from_image = false from its layer", () => {
      const resolved = resolveConfig([layer('[tmpfs."/srv/data"]\nsize = "1g"\nmode = "0700"', "a.toml")]);
      expect(resolved.config.tmpfs["/srv/data"]).toEqual({ enabled: true, size: "1g", mode: "0700", seed_from_image: false });
      expect(resolved.provenance).toMatchObject({
        'tmpfs."/srv/data".enabled': "a.toml",
        'tmpfs."/srv/data".size': "a.toml",
        'tmpfs."/srv/data".mode': "a.toml",
        'tmpfs."/srv/data".seed_from_image': "a.toml",
      });
      expect(Object.keys(resolved.config.tmpfs)).toEqual(["/etc", "/var/log", "/tmp", "/srv/data"]);
    });

    test("a new entry can set every key", () => {
      const resolved = resolveConfig([
        layer('[tmpfs."/srv"]\nsize = "1g"\nmode = "0700"\nenabled = false\nseed_from_image = true', "a.toml"),
      ]);
      expect(resolved.config.tmpfs["/srv"]).toEqual({ enabled: false, size: "1g", mode: "0700", seed_from_image: true });
    });

    test("a new entry without size or mode rejects its layer", () => {
      const noMode = resolveConfig([layer('[tmpfs."/srv"]\nsize = "1g"\nseed_from_image = true', "a.toml")]);
      expect(noMode.config).toEqual(DEFAULT_CONFIG);
      expect(noMode.problems).toEqual([
        'a.toml: key tmpfs."/srv": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no mode',
      ]);
      const neither = resolveConfig([layer('[tmpfs."/srv"]\nenabled = true\n[tmpfs."/opt"]', "b.toml")]);
      expect(neither.problems).toEqual([
        'b.toml: key tmpfs."/srv": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no size and no mode',
        'b.toml: key tmpfs."/opt": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no size and no mode',
      ]);
      expect(neither.layers[1]?.status).toBe("rejected");
    });

    test("a later layer may change part of an entry an earlier layer made", () => {
      const resolved = resolveConfig([
        layer('[tmpfs."/srv"]\nsize = "1g"\nmode = "0700"', "a.toml"),
        layer('[tmpfs."/srv"]\nsize = "2g"', "b.toml"),
      ]);
      expect(resolved.problems).toEqual([]);
      expect(resolved.config.tmpfs["/srv"]).toEqual({ enabled: true, size: "2g", mode: "0700", seed_from_image: false });
    });

    test("…but not when the layer that made it was rejected", () => {
      const resolved = resolveConfig([
        layer('[tmpfs."/srv"]\nsize = "1g"\nmode = "0700"\nbad = 1', "a.toml"),
        layer('[tmpfs."/srv"]\nsize = "2g"', "b.toml"),
      ]);
      expect(resolved.config.tmpfs["/srv"]).toBeUndefined();
      expect(resolved.layers.map((record) => record.status)).toEqual(["applied", "rejected", "rejected"]);
    });
  });

  describe("labels", () => {
    test("two roles cannot share a label", () => {
      const resolved = resolveConfig([layer("labels.backup = 'SYSFS'", "a.toml")]);
      expect(resolved.config.labels).toEqual(DEFAULT_CONFIG.labels);
      expect(resolved.problems).toEqual(['a.toml: key labels.backup: expected a label different from labels.system, got "SYSFS"']);
    });

    test("a layer may swap two labels at once", () => {
      const resolved = resolveConfig([layer("labels.backup = 'SYSFS'\nlabels.system = 'BACKUPFS'", "a.toml")]);
      expect(resolved.problems).toEqual([]);
      expect(resolved.config.labels).toMatchObject({ system: "BACKUPFS", backup: "SYSFS" });
    });

    test("merge problems and new-tmpfs problems of one layer are all told", () => {
      const resolved = resolveConfig([layer("labels.bootext = 'DEPRIVED'\n[tmpfs.\"/srv\"]\nsize = '1m'", "a.toml")]);
      expect(resolved.problems).toEqual([
        'a.toml: key tmpfs."/srv": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no mode',
        'a.toml: key labels.bootext: expected a label different from labels.deprived, got "DEPRIVED"',
      ]);
    });
  });

  test("ignored, missing and rejected layers are recorded as they are", () => {
    const resolved = resolveConfig([
      { kind: "bootext", source: "bootext:config.d", status: "missing", problems: [] },
      { kind: "initramfs", source: "initramfs:x/README", status: "ignored", problems: [] },
      { kind: "initramfs", source: "initramfs:x/a.toml", status: "rejected", problems: ["initramfs:x/a.toml: bad"] },
    ]);
    expect(resolved.config).toEqual(DEFAULT_CONFIG);
    expect(resolved.layers).toEqual([
      { kind: "defaults", source: DEFAULTS_SOURCE, status: "applied", problems: [] },
      { kind: "initramfs", source: "initramfs:x/README", status: "ignored", problems: [] },
      { kind: "initramfs", source: "initramfs:x/a.toml", status: "rejected", problems: ["initramfs:x/a.toml: bad"] },
      { kind: "bootext", source: "bootext:config.d", status: "missing", problems: [] },
    ]);
    expect(resolved.problems).toEqual(["initramfs:x/a.toml: bad"]);
  });
});

// --- controller.KEY=VALUE ----------------------------------------------------

describe("cmdline overrides", () => {
  function applied(param: string): ReturnType<typeof resolveConfig> {
    const resolved = resolveConfig([override(param)]);
    expect(resolved.problems).toEqual([]);
    return resolved;
  }

  function rejectedProblems(param: string): readonly string[] {
    const resolved = resolveConfig([override(param)]);
    expect(resolved.config).toEqual(DEFAULT_CONFIG);
    expect(resolved.layers[1]?.status).toBe("rejected");
    return resolved.problems;
  }

  test("numbers stay numbers", () => {
    const resolved = applied("controller.timeouts.devices_seconds=60");
    expect(resolved.config.timeouts.devices_seconds).toBe(60);
    expect(resolved.provenance["timeouts.devices_seconds"]).toBe("cmdline:controller.timeouts.devices_seconds");
  });

  test("booleans stay booleans", () => {
    expect(applied("controller.bootext.read_only=true").config.bootext.read_only).toBe(true);
    expect(applied("controller.overmounts.enabled=false").config.overmounts.enabled).toBe(false);
  });

  test("bare words become strings", () => {
    expect(applied("controller.slot.image=images/system.squashfs").config.slot.image).toBe("images/system.squashfs");
    expect(applied("controller.boot.real_init=/usr/lib/systemd/systemd").config.boot.real_init).toBe("/usr/lib/systemd/systemd");
    expect(applied("controller.labels.system=A#B").config.labels.system).toBe("A#B");
  });

  test("strings that look like numbers or booleans stay strings for string keys", () => {
    expect(applied("controller.labels.system=123").config.labels.system).toBe("123");
    expect(applied("controller.labels.system=true").config.labels.system).toBe("true");
    expect(applied("controller.labels.system=1979-05-27").config.labels.system).toBe("1979-05-27");
    expect(applied('controller.tmpfs."/tmp".mode=1777').config.tmpfs["/tmp"]?.mode).toBe("1777");
  });

  test("the kernel's quotes allow spaces; quotes in the middle are TOML quotes", () => {
    expect(applied('controller.labels.system="MY FS"').config.labels.system).toBe("MY FS");
    expect(applied("controller.labels.system=a\"b\"").config.labels.system).toBe('a"b"');
    expect(applied('controller.labels.system=\'"SYS"\'').config.labels.system).toBe('"SYS"');
  });

  test("quoted tmpfs keys", () => {
    const resolved = applied('controller.tmpfs."/var/log".size=128m');
    expect(resolved.config.tmpfs["/var/log"]?.size).toBe("128m");
    expect(resolved.provenance['tmpfs."/var/log".size']).toBe('cmdline:controller.tmpfs."/var/log".size');
    expect(applied("controller.tmpfs.'/tmp'.enabled=false").config.tmpfs["/tmp"]?.enabled).toBe(false);
  });

  test("a whole table as an inline table", () => {
    const resolved = applied('controller.tmpfs."/srv"={size="1g",mode="0700"}');
    expect(resolved.config.tmpfs["/srv"]).toEqual({ enabled: true, size: "1g", mode: "0700", seed_from_image: false });
    expect(applied("controller.timeouts={devices_seconds=5,command_seconds=6}").config.timeouts).toEqual({
      devices_seconds: 5,
      command_seconds: 6,
      network_seconds: 20,
      server_seconds: 15,
      request_seconds: 30,
      image_min_kib_per_second: 64,
      image_window_seconds: 60,
    });
  });

  test("a value that fits neither as written nor as a string is rejected, naming the param", () => {
    expect(rejectedProblems("controller.timeouts.devices_seconds=ten")).toEqual([
      'cmdline:controller.timeouts.devices_seconds: key timeouts.devices_seconds: expected an integer from 1 to 3600, got "ten"',
    ]);
    // valid TOML that does not fit is told as written, not as its string form
    expect(rejectedProblems("controller.timeouts.devices_seconds=99999")).toEqual([
      "cmdline:controller.timeouts.devices_seconds: key timeouts.devices_seconds: expected an integer from 1 to 3600, got 99999",
    ]);
    expect(rejectedProblems("controller.bootext.read_only=yes")).toEqual([
      'cmdline:controller.bootext.read_only: key bootext.read_only: expected true or false, got "yes"',
    ]);
    expect(rejectedProblems("controller.tmpfs.\"/tmp\".size=")).toEqual([
      'cmdline:controller.tmpfs."/tmp".size: key tmpfs."/tmp".size: expected a tmpfs size such as "64m", "2g" or "50%" (digits with an optional k, m or g; or 1 to 100 then %), got ""',
    ]);
  });

  test("unknown keys are rejected", () => {
    expect(rejectedProblems("controller.boot.init=/x")).toEqual([
      "cmdline:controller.boot.init: key boot.init: unknown key; [boot] has real_init, kernel_switch",
    ]);
    expect(rejectedProblems("controller.verbose=1")).toEqual([
      "cmdline:controller.verbose: key verbose: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs",
    ]);
  });

  test("a key that is not a TOML dotted key is rejected", () => {
    for (const param of ["controller.tmpfs./tmp.size=1g", 'controller.tmpfs."/tmp.size=1g', "controller.a..b=1", '"controller.a b=1"']) {
      const problems = rejectedProblems(param);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain(": expected a TOML dotted key after \"controller.\", got ");
      expect(problems[0]).toEndWith('; quote parts that are not letters, digits, _ or -, as in controller.tmpfs."/var/log".size=128m');
    }
  });

  test("a value cannot smuggle in a second line", () => {
    expect(rejectedProblems('controller.timeouts.devices_seconds="5\nlabels.system = \'X\'"')).toEqual([
      "cmdline:controller.timeouts.devices_seconds: expected a value without control characters or line breaks, got \"5\\nlabels.system = 'X'\"",
    ]);
  });

  test("a new tmpfs entry needs size and mode on the command line too", () => {
    expect(rejectedProblems('controller.tmpfs."/srv".size=1g')).toEqual([
      'cmdline:controller.tmpfs."/srv".size: key tmpfs."/srv": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no mode',
    ]);
  });

  test("each override is its own layer: a bad one does not take the good ones down", () => {
    const resolved = resolveConfig(
      cmdlineLayers(
        parseCmdline("controller.timeouts.devices_seconds=9 controller.timeouts.command_seconds=x controller.labels.system=Z")
          .configOverrides,
      ),
    );
    expect(resolved.config.timeouts).toEqual({ devices_seconds: 9, command_seconds: 120, network_seconds: 20, server_seconds: 15, request_seconds: 30, image_min_kib_per_second: 64, image_window_seconds: 60 });
    expect(resolved.config.labels.system).toBe("Z");
    expect(resolved.problems).toHaveLength(1);
  });

  test("an override beats a file even when it comes first", () => {
    const resolved = resolveConfig([
      override("controller.timeouts.devices_seconds=4"),
      layer("timeouts.devices_seconds = 5", "bootext:config.d/x.toml", "bootext"),
    ]);
    expect(resolved.config.timeouts.devices_seconds).toBe(4);
  });
});

// --- folders -----------------------------------------------------------------

describe("loadConfigDir", () => {
  test("*.toml files in byte order; other names and hidden files ignored", async () => {
    const files = fakeFiles({
      "c/b.toml": "",
      "c/B.toml": "",
      "c/a.toml": "",
      "c/10-x.toml": "",
      "c/9-x.toml": "",
      "c/é.toml": "",
      "c/z.toml": "",
      "c/README": "not toml",
      "c/x.toml.bak": "= broken",
      "c/.#a.toml": "= broken",
      "c/.toml": "= broken",
      "c/x.TOML": "= broken",
    });
    const layers = await loadConfigDir(files, "bootext", "/c", "bootext:config.d");
    expect(layers.map((layer) => [layer.source, layer.status])).toEqual([
      ["bootext:config.d/.#a.toml", "ignored"],
      ["bootext:config.d/.toml", "ignored"],
      ["bootext:config.d/10-x.toml", "parsed"],
      ["bootext:config.d/9-x.toml", "parsed"],
      ["bootext:config.d/B.toml", "parsed"],
      ["bootext:config.d/README", "ignored"],
      ["bootext:config.d/a.toml", "parsed"],
      ["bootext:config.d/b.toml", "parsed"],
      ["bootext:config.d/x.TOML", "ignored"],
      ["bootext:config.d/x.toml.bak", "ignored"],
      ["bootext:config.d/z.toml", "parsed"],
      ["bootext:config.d/é.toml", "parsed"],
    ]);
    expect(layers.every((layer) => layer.kind === "bootext")).toBe(true);
  });

  test("file order decides between files", async () => {
    const files = fakeFiles({
      "c/20-site.toml": "timeouts.devices_seconds = 20",
      "c/10-base.toml": "timeouts.devices_seconds = 10\ntimeouts.command_seconds = 10",
    });
    const resolved = resolveConfig(await loadConfigDir(files, "initramfs", "/c/", "initramfs:/c"));
    expect(resolved.config.timeouts).toEqual({ devices_seconds: 20, command_seconds: 10, network_seconds: 20, server_seconds: 15, request_seconds: 30, image_min_kib_per_second: 64, image_window_seconds: 60 });
    expect(resolved.provenance["timeouts.devices_seconds"]).toBe("initramfs:/c/20-site.toml");
  });

  test("a missing folder is an empty, recorded layer set", async () => {
    const layers = await loadConfigDir(fakeFiles({}), "bootext", "/nowhere", "bootext:config.d");
    expect(layers).toEqual([{ kind: "bootext", source: "bootext:config.d", status: "missing", problems: [] }]);
    expect(resolveConfig(layers).problems).toEqual([]);
  });

  test("an unreadable folder is a problem, and the boot goes on with the defaults", async () => {
    const layers = await loadConfigDir(fakeFiles({ c: { dir: true } }, { "/c": "EACCES: permission denied" }), "bootext", "/c", "bootext:config.d");
    expect(layers).toEqual([
      {
        kind: "bootext",
        source: "bootext:config.d",
        status: "rejected",
        problems: ["bootext:config.d: Cannot read config files: EACCES: permission denied: /c"],
      },
    ]);
    expect(resolveConfig(layers).config).toEqual(DEFAULT_CONFIG);
  });

  test("a file where the folder should be is a problem", async () => {
    const layers = await loadConfigDir(fakeFiles({ c: "x" }), "initramfs", "/c", "initramfs:/c");
    expect(layers).toEqual([
      {
        kind: "initramfs",
        source: "initramfs:/c",
        status: "rejected",
        problems: ["initramfs:/c: Cannot read config files: /c is a regular file, expected a folder"],
      },
    ]);
  });

  test("a *.toml that is not a regular file or cannot be read is rejected; the others still load", async () => {
    const files = fakeFiles(
      {
        "c/10-dir.toml": { dir: true },
        "c/20-link.toml": { symlink: "/etc/site.toml" },
        "etc/site.toml": "labels.system = 'LINKED'",
        "c/40-locked.toml": "labels.system = 'LOCKED'",
        "c/50-good.toml": "labels.system = 'GOOD'",
      },
      { "/c/40-locked.toml": "EACCES: permission denied" },
    );
    const layers = await loadConfigDir(files, "bootext", "/c", "bootext:config.d");
    const resolved = resolveConfig(layers);
    expect(resolved.config.labels.system).toBe("GOOD");
    expect(resolved.problems).toEqual([
      "bootext:config.d/10-dir.toml: Cannot read it as a config file: it is a folder, expected a regular file",
      "bootext:config.d/20-link.toml: Cannot read it as a config file: it is a symlink, expected a regular file",
      "bootext:config.d/40-locked.toml: Cannot read it: EACCES: permission denied: /c/40-locked.toml",
    ]);
  });

  test("the initramfs folder and its source names", async () => {
    const files = fakeFiles({ "/etc/controller/config.d/10-labels.toml": "labels.system = 'X'" });
    const resolved = resolveConfig(await loadInitramfsConfig(files));
    expect(resolved.provenance["labels.system"]).toBe("initramfs:/etc/controller/config.d/10-labels.toml");
  });

  test("the BOOTEXT folder comes from bootext.config_dir, named relative to BOOTEXT", async () => {
    const files = fakeFiles({
      "run/controller/bootext/config.d/20-site.toml": "timeouts.devices_seconds = 'ten'",
      "run/controller/bootext/site/20-site.toml": "timeouts.devices_seconds = 12",
    });
    const byDefault = resolveConfig(await loadBootextConfig(files, DEFAULT_CONFIG));
    expect(byDefault.problems).toEqual([
      'bootext:config.d/20-site.toml: key timeouts.devices_seconds: expected an integer from 1 to 3600, got "ten"',
    ]);
    const moved = { ...DEFAULT_CONFIG, bootext: { ...DEFAULT_CONFIG.bootext, config_dir: "site" } };
    const resolved = resolveConfig(await loadBootextConfig(files, moved));
    expect(resolved.config.timeouts.devices_seconds).toBe(12);
    expect(resolved.provenance["timeouts.devices_seconds"]).toBe("bootext:site/20-site.toml");
    expect(resolved.layers[1]?.kind).toBe("bootext");
  });
});

// --- check-config ------------------------------------------------------------

describe("checkConfigDir", () => {
  test("a good folder: no problems, a summary of what it sets", async () => {
    const files = fakeFiles({
      "cfg/10-a.toml": "timeouts.devices_seconds = 5",
      "cfg/20-b.toml": "# nothing",
      "cfg/notes.txt": "",
    });
    expect(await checkConfigDir(files, "/cfg/")).toEqual({
      problems: [],
      summary: "/cfg: 2 config files, 0 rejected; ignored (hidden or not *.toml): notes.txt; sets timeouts.devices_seconds",
    });
  });

  test("every problem of every file, named by its real path", async () => {
    const files = fakeFiles({
      "cfg/10-a.toml": "timeouts.devices_seconds = 0\nbogus = 1",
      "cfg/20-b.toml": "[x",
      "cfg/30-c.toml": '[tmpfs."/srv"]\nsize = "1g"',
      "cfg/40-d.toml": "labels.system = 'OK'",
    });
    const check = await checkConfigDir(files, "/cfg");
    expect(check.problems).toEqual([
      "/cfg/10-a.toml: key timeouts.devices_seconds: expected an integer from 1 to 3600, got 0",
      "/cfg/10-a.toml: key bogus: unknown key; the tables are labels, slot, boot, timeouts, bootext, overmounts, update, network, health, heddle, ssh, remote, diskless, fleet, tmpfs",
      "/cfg/20-b.toml: TOML syntax error at line 1, column 2: incomplete key-value: cannot find end of key",
      '/cfg/30-c.toml: key tmpfs."/srv": expected size and mode for a new tmpfs mount point (enabled defaults to true, seed_from_image to false), got no mode',
    ]);
    expect(check.summary).toBe("/cfg: 4 config files, 3 rejected; sets labels.system");
  });

  test("a missing folder is a problem here", async () => {
    expect(await checkConfigDir(fakeFiles({}), "/nope")).toEqual({
      problems: ["/nope: Cannot check config files: no such folder"],
      summary: "/nope: not found",
    });
  });

  test("an unreadable folder is a problem", async () => {
    const check = await checkConfigDir(fakeFiles({ cfg: { dir: true } }, { "/cfg": "EACCES" }), "/cfg");
    expect(check.problems).toEqual(["/cfg: Cannot read config files: EACCES: /cfg"]);
    expect(check.summary).toBe("/cfg: 0 config files, 0 rejected; every value is the built-in default");
  });
});
