import { describe, expect, test } from "bun:test";
import { parseCmdline, tokenizeCmdline } from "../../../controller/config/cmdline.ts";

describe("tokenizeCmdline: the kernel's next_arg()", () => {
  const cases: [string, { name: string; value?: string }[]][] = [
    ["", []],
    ["   \t  \n", []],
    ["quiet", [{ name: "quiet" }]],
    ["root=/dev/sda1 ro", [{ name: "root", value: "/dev/sda1" }, { name: "ro" }]],
    // several kinds of whitespace between, before and after
    ["  a=1 \t\tb\v\fc=3\r ", [{ name: "a", value: "1" }, { name: "b" }, { name: "c", value: "3" }]],
    ["foo=", [{ name: "foo", value: "" }]],
    ["foo==", [{ name: "foo", value: "=" }]],
    ["a=b=c", [{ name: "a", value: "b=c" }]],
    // an "=" as the first character does not split: the kernel's `equals == 0` test
    ["=value", [{ name: "=value" }]],
    ["=a=b", [{ name: "=a", value: "b" }]],
    ['"foo=bar baz"', [{ name: "foo", value: "bar baz" }]],
    ['foo="bar baz"', [{ name: "foo", value: "bar baz" }]],
    ['foo="bar baz" next', [{ name: "foo", value: "bar baz" }, { name: "next" }]],
    // quotes in the middle stay, and still keep spaces together
    ['foo=a"b c"d', [{ name: "foo", value: 'a"b c"d' }]],
    ['a"b c"=d', [{ name: 'a"b c"', value: "d" }]],
    ['controller.tmpfs."/var/log".size=128m', [{ name: 'controller.tmpfs."/var/log".size', value: "128m" }]],
    // a quote right after "=" is dropped even when the token does not end with one
    ['foo="bar', [{ name: "foo", value: "bar" }]],
    ['foo="bar"baz', [{ name: "foo", value: 'bar"baz' }]],
    // an unterminated quote swallows the rest of the line
    ['foo="bar baz qux', [{ name: "foo", value: "bar baz qux" }]],
    ['a="x y b=2', [{ name: "a", value: "x y b=2" }]],
    ['"flag with space"', [{ name: "flag with space" }]],
    ['"quoted', [{ name: "quoted" }]],
    ['"', [{ name: "" }]],
    ['""', [{ name: "" }]],
    ['foo=""', [{ name: "foo", value: "" }]],
    ['foo="', [{ name: "foo", value: "" }]],
    // a leading quote pairs with the first inner quote, so the value keeps its quotes minus the last
    ['"foo="bar""', [{ name: "foo", value: 'bar"' }]],
    // bare -- hands the rest to init
    ["a -- b=1 c", [{ name: "a" }]],
    ["-- a", []],
    ["a --x b", [{ name: "a" }, { name: "--x" }, { name: "b" }]],
    ["a --=1 b", [{ name: "a" }, { name: "--", value: "1" }, { name: "b" }]],
    ['a "--" b', [{ name: "a" }]],
    ["a -", [{ name: "a" }, { name: "-" }]],
  ];
  for (const [raw, expected] of cases) {
    test(JSON.stringify(raw), () => {
      expect(tokenizeCmdline(raw)).toEqual(expected);
    });
  }

  test("the newline /proc/cmdline adds is not part of the line", () => {
    expect(tokenizeCmdline("ro shell\n")).toEqual([{ name: "ro" }, { name: "shell" }]);
    // inside an open quote the kernel never saw that newline
    expect(tokenizeCmdline('foo="bar baz\n')).toEqual([{ name: "foo", value: "bar baz" }]);
    // only the one newline /proc adds
    expect(tokenizeCmdline('foo="bar\n\n')).toEqual([{ name: "foo", value: "bar\n" }]);
  });

  test("non-ASCII text passes through", () => {
    expect(tokenizeCmdline("label=Système ä=ü")).toEqual([
      { name: "label", value: "Système" },
      { name: "ä", value: "ü" },
    ]);
  });

  test("a repeated parameter stays twice: last-wins is parseCmdline's business", () => {
    expect(tokenizeCmdline("a=1 a=2")).toEqual([
      { name: "a", value: "1" },
      { name: "a", value: "2" },
    ]);
  });
});

describe("parseCmdline", () => {
  test("an empty line gives every default and no warning", () => {
    expect(parseCmdline("\n")).toEqual({
      raw: "",
      shell: false,
      debug: false,
      configOverrides: [],
      heddle: { fallback: false },
      net: false,
      ssh: false,
      lldpd: false,
      warnings: [],
    });
  });

  test("a full line", () => {
    const cmdline = parseCmdline(
      'BOOT_IMAGE=/vmlinuz root=controller ro real_init=/usr/lib/systemd/systemd shell rd.controller.debug ' +
        "controller.timeouts.devices_seconds=60 heddle_boot=dist heddle_update=lab-2024.1 heddle_fallback=1 " +
        "net ssh=yes lldpd=on ssh_keys_url=https://keys.example/lab command_url=http://10.0.0.1:8080/cmd -- single\n",
    );
    expect(cmdline).toEqual({
      raw:
        'BOOT_IMAGE=/vmlinuz root=controller ro real_init=/usr/lib/systemd/systemd shell rd.controller.debug ' +
        "controller.timeouts.devices_seconds=60 heddle_boot=dist heddle_update=lab-2024.1 heddle_fallback=1 " +
        "net ssh=yes lldpd=on ssh_keys_url=https://keys.example/lab command_url=http://10.0.0.1:8080/cmd -- single",
      root: "controller",
      realInit: "/usr/lib/systemd/systemd",
      shell: true,
      debug: true,
      configOverrides: [
        { param: "controller.timeouts.devices_seconds", key: "timeouts.devices_seconds", value: "60" },
      ],
      heddle: { boot: "dist", update: "lab-2024.1", fallback: true },
      bootImage: "/vmlinuz",
      net: true,
      ssh: true,
      lldpd: true,
      sshKeysUrl: "https://keys.example/lab",
      commandUrl: "http://10.0.0.1:8080/cmd",
      warnings: [],
    });
  });

  test("BOOT_IMAGE as GRUB gives it, with or without a device; empty is ignored with a warning", () => {
    expect(parseCmdline("BOOT_IMAGE=/Kernel/active-kernel root=controller").bootImage).toBe("/Kernel/active-kernel");
    const withDevice = parseCmdline("BOOT_IMAGE=(hd0,gpt2)/boot/vmlinuz-6.1.0-57-amd64 root=controller");
    expect(withDevice.bootImage).toBe("(hd0,gpt2)/boot/vmlinuz-6.1.0-57-amd64");
    expect(withDevice.warnings).toEqual([]);
    const empty = parseCmdline("BOOT_IMAGE= root=controller");
    expect(empty.bootImage).toBeUndefined();
    expect(empty.warnings).toHaveLength(1);
  });

  test("parameters after -- belong to init", () => {
    const cmdline = parseCmdline("ro -- shell real_init=/bin/sh controller.boot.real_init=/x");
    expect(cmdline.shell).toBe(false);
    expect(cmdline.realInit).toBeUndefined();
    expect(cmdline.configOverrides).toEqual([]);
  });

  test("root= is kept as given", () => {
    expect(parseCmdline("root=LABEL=SYSFS").root).toBe("LABEL=SYSFS");
    expect(parseCmdline("root=").root).toBe("");
    const bare = parseCmdline("root");
    expect(bare.root).toBeUndefined();
    expect(bare.warnings).toEqual(["root: expected root=DEVICE or root=controller; ignoring it"]);
  });

  describe("real_init", () => {
    test("is normalised", () => {
      expect(parseCmdline("real_init=//usr//lib/systemd/systemd/").realInit).toBe("/usr/lib/systemd/systemd");
      expect(parseCmdline('real_init="/opt/my init"').realInit).toBe("/opt/my init");
    });

    const bad: [string, string][] = [
      ["real_init=sbin/init", 'real_init="sbin/init"'],
      ["real_init=", 'real_init=""'],
      ["real_init=/", 'real_init="/"'],
      ["real_init=///", 'real_init="///"'],
      ["real_init=/sbin/../bin/sh", 'real_init="/sbin/../bin/sh"'],
      ["real_init=/./sbin/init", 'real_init="/./sbin/init"'],
      ["real_init=/sbin/init/..", 'real_init="/sbin/init/.."'],
      ['real_init="/sbin/in\u0001it"', 'real_init="/sbin/in\\u0001it"'],
      ['real_init="/sbin/init\ttab"', 'real_init="/sbin/init\\ttab"'],
      ["real_init", "real_init"],
    ];
    for (const [line, shown] of bad) {
      test(`rejects ${JSON.stringify(line)}`, () => {
        const cmdline = parseCmdline(line);
        expect(cmdline.realInit).toBeUndefined();
        expect(cmdline.warnings).toEqual([`${shown}: expected an absolute path such as /sbin/init; using the default`]);
      });
    }

    test("keeps dots that are part of a name", () => {
      expect(parseCmdline("real_init=/opt/.hidden/..init").realInit).toBe("/opt/.hidden/..init");
    });

    test("the last one wins, even when it is bad", () => {
      expect(parseCmdline("real_init=/a real_init=/b").realInit).toBe("/b");
      const cmdline = parseCmdline("real_init=/a real_init=b");
      expect(cmdline.realInit).toBeUndefined();
      expect(cmdline.warnings).toHaveLength(1);
    });
  });

  describe("flags", () => {
    const flags = [
      ["shell", (c: ReturnType<typeof parseCmdline>) => c.shell],
      ["rd.controller.debug", (c: ReturnType<typeof parseCmdline>) => c.debug],
      ["heddle_fallback", (c: ReturnType<typeof parseCmdline>) => c.heddle.fallback],
      ["net", (c: ReturnType<typeof parseCmdline>) => c.net],
      ["ssh", (c: ReturnType<typeof parseCmdline>) => c.ssh],
      ["lldpd", (c: ReturnType<typeof parseCmdline>) => c.lldpd],
    ] as const;
    for (const [name, read] of flags) {
      test(`${name}: absent, bare and every spelling`, () => {
        expect(read(parseCmdline("ro"))).toBe(false);
        expect(read(parseCmdline(name))).toBe(true);
        for (const word of ["1", "yes", "true", "on"]) expect(read(parseCmdline(`${name}=${word}`))).toBe(true);
        for (const word of ["0", "no", "false", "off"]) expect(read(parseCmdline(`${name}=${word}`))).toBe(false);
        expect(parseCmdline(`${name}=1 ${name}=0`).warnings).toEqual([]);
        expect(read(parseCmdline(`${name}=1 ${name}=0`))).toBe(false);
        expect(read(parseCmdline(`${name}=0 ${name}`))).toBe(true);
      });

      for (const bad of ["", "2", "maybe", "YES", "True", " on", "yes please"]) {
        test(`${name}=${JSON.stringify(bad)} warns and is false`, () => {
          const cmdline = parseCmdline(`"${name}=${bad}"`);
          expect(read(cmdline)).toBe(false);
          expect(cmdline.warnings).toEqual([
            `${name}=${JSON.stringify(bad)}: expected ${name} alone or ${name}= one of 1, yes, true, on, 0, no, false, off; using false`,
          ]);
        });
      }
    }
  });

  describe("heddle", () => {
    test("heddle_boot takes only dist", () => {
      expect(parseCmdline("heddle_boot=dist").heddle).toEqual({ boot: "dist", fallback: false });
      for (const line of ["heddle_boot=Dist", "heddle_boot=", "heddle_boot=disk", "heddle_boot"]) {
        const cmdline = parseCmdline(line);
        expect(cmdline.heddle).toEqual({ fallback: false });
        expect(cmdline.warnings).toHaveLength(1);
        expect(cmdline.warnings[0]).toStartWith("heddle_boot");
        expect(cmdline.warnings[0]).toEndWith(": expected dist; ignoring it");
      }
    });

    test("heddle_update takes / or a name", () => {
      for (const name of ["/", "a", "lab-2024.1", "v1.2+build_3", "9x"]) {
        expect(parseCmdline(`heddle_update=${name}`).heddle.update).toBe(name);
      }
      for (const name of ["", "-x", ".hidden", "_x", "a/b", "//", "a b", "ä", "../x"]) {
        const cmdline = parseCmdline(`"heddle_update=${name}"`);
        expect(cmdline.heddle.update).toBeUndefined();
        expect(cmdline.warnings).toEqual([
          `heddle_update=${JSON.stringify(name)}: expected / or an update name such as lab-2024.1; ignoring it`,
        ]);
      }
      expect(parseCmdline("heddle_update").warnings).toEqual([
        "heddle_update: expected / or an update name such as lab-2024.1; ignoring it",
      ]);
    });
  });

  describe("URLs", () => {
    test("http and https are kept in canonical form", () => {
      const cmdline = parseCmdline("ssh_keys_url=HTTPS://Keys.Example command_url=http://h/a%20b?x=1");
      expect(cmdline.sshKeysUrl).toBe("https://keys.example/");
      expect(cmdline.commandUrl).toBe("http://h/a%20b?x=1");
    });

    for (const [name, field] of [
      ["ssh_keys_url", "sshKeysUrl"],
      ["command_url", "commandUrl"],
    ] as const) {
      for (const bad of ["ftp://h/x", "file:///etc/shadow", "keys.example/x", "", "http://", "javascript:alert(1)", "http://[::1"]) {
        test(`${name}=${JSON.stringify(bad)} is refused`, () => {
          const cmdline = parseCmdline(`${name}=${bad}`);
          expect(cmdline[field]).toBeUndefined();
          expect(cmdline.warnings).toEqual([
            `${name}=${JSON.stringify(bad)}: expected an http:// or https:// URL; ignoring it`,
          ]);
        });
      }
      test(`bare ${name} is refused`, () => {
        expect(parseCmdline(name).warnings).toEqual([`${name}: expected an http:// or https:// URL; ignoring it`]);
      });
    }
  });

  describe("controller.KEY=VALUE", () => {
    test("every one is kept raw, in order", () => {
      const cmdline = parseCmdline(
        'controller.labels.system="MY FS" controller.tmpfs."/var/log".size=128m controller.boot.real_init=/x',
      );
      expect(cmdline.configOverrides).toEqual([
        { param: "controller.labels.system", key: "labels.system", value: "MY FS" },
        { param: 'controller.tmpfs."/var/log".size', key: 'tmpfs."/var/log".size', value: "128m" },
        { param: "controller.boot.real_init", key: "boot.real_init", value: "/x" },
      ]);
      expect(cmdline.warnings).toEqual([]);
    });

    test("an empty value is still a value", () => {
      expect(parseCmdline("controller.labels.system=").configOverrides).toEqual([
        { param: "controller.labels.system", key: "labels.system", value: "" },
      ]);
    });

    test("the last of a repeated key wins, at its own position", () => {
      expect(parseCmdline("controller.a=1 controller.b=2 controller.a=3").configOverrides).toEqual([
        { param: "controller.b", key: "b", value: "2" },
        { param: "controller.a", key: "a", value: "3" },
      ]);
    });

    test("without a key or a value it is a warning", () => {
      const cmdline = parseCmdline("controller. controller.=1 controller.boot.real_init");
      expect(cmdline.configOverrides).toEqual([]);
      expect(cmdline.warnings).toEqual([
        "controller.=\"1\": expected controller.KEY=VALUE such as controller.boot.real_init=/sbin/init; ignoring it",
        "controller.boot.real_init: expected controller.boot.real_init=VALUE; ignoring it",
      ]);
    });

    test("other names that start alike are not ours", () => {
      const cmdline = parseCmdline("controller=1 controllers.x=1 rd.controller=1");
      expect(cmdline.configOverrides).toEqual([]);
      expect(cmdline.warnings).toEqual([]);
    });
  });

  test("an unknown rd.controller.* parameter is a warning, other unknown parameters are not", () => {
    expect(parseCmdline("rd.controller.debgu rd.controller.debug=1 quiet splash").warnings).toEqual([
      "rd.controller.debgu: unknown parameter; the rd.controller.* parameters are rd.controller.debug, rd.controller.cut, rd.controller.kexec, rd.controller.kexec_by",
    ]);
  });

  test("several bad values give several warnings and never throw", () => {
    const cmdline = parseCmdline('shell=maybe real_init=x heddle_boot=y ssh_keys_url=z controller. "net=2');
    expect(cmdline.warnings).toHaveLength(6);
    expect(cmdline.shell).toBe(false);
    expect(cmdline.net).toBe(false);
  });
});
