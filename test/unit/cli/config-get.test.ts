import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { runConfigGetCommand } from "../../../controller/cli/config-get.ts";
import type { CommandOutput } from "../../../controller/cli/output.ts";
import { FakeSystem } from "../../fake-system.ts";

function memoryOutput(): CommandOutput & { stdout: string; stderr: string } {
  const output = {
    stdout: "",
    stderr: "",
    out: (text: string) => {
      output.stdout += text;
    },
    err: (text: string) => {
      output.stderr += text;
    },
  };
  return output;
}

async function configGet(fake: FakeSystem, ...args: string[]) {
  const output = memoryOutput();
  const code = await runConfigGetCommand(args, fake, output);
  return { code, stdout: output.stdout, stderr: output.stderr };
}

const site = new FakeSystem().addTree("/build/config.d", {
  "10-update.toml": '[update]\nca_bundle = "/etc/pki/lab-ca.pem"\nservers = ["http://10.0.2.100:8080/", "https://updates.example.org/lab/"]\n',
  "20-tmpfs.toml": '[tmpfs."/srv"]\nsize = "1g"\nmode = "0755"\n',
  "README": "not a config file",
});

describe("controller config-get", () => {
  test("a value the folder sets, and one it leaves at the default", async () => {
    expect(await configGet(site, "/build/config.d", "update.ca_bundle")).toEqual({ code: 0, stdout: "/etc/pki/lab-ca.pem\n", stderr: "" });
    expect(await configGet(site, "/build/config.d/", "timeouts.network_seconds")).toEqual({ code: 0, stdout: "20\n", stderr: "" });
    expect(await configGet(site, "/build/config.d", "overmounts.enabled")).toMatchObject({ stdout: "true\n" });
  });

  test("an array is one item per line; an empty one prints nothing", async () => {
    expect(await configGet(site, "/build/config.d", "update.servers")).toMatchObject({
      code: 0,
      stdout: "http://10.0.2.100:8080/\nhttps://updates.example.org/lab/\n",
    });
    expect(await configGet(site, "/build/config.d", "network.interfaces")).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("keys are written as the report writes them, quotes included", async () => {
    expect(await configGet(site, "/build/config.d", 'tmpfs."/srv".size')).toMatchObject({ code: 0, stdout: "1g\n" });
    expect(await configGet(site, "/build/config.d", 'tmpfs."/etc".seed_from_image')).toMatchObject({ code: 0, stdout: "true\n" });
  });

  test("an empty folder gives the built-in defaults", async () => {
    const empty = new FakeSystem().addTree("/empty", {});
    expect(await configGet(empty, "/empty", "update.ca_bundle")).toEqual({ code: 0, stdout: "/etc/ssl/certs/ca-certificates.crt\n", stderr: "" });
  });

  test("a file the boot would skip is skipped, with its problem on stderr", async () => {
    const broken = new FakeSystem().addTree("/c", {
      "10-ok.toml": '[update]\nca_bundle = "/etc/ok.pem"\n',
      "20-bad.toml": '[update]\nca_bundle = "relative.pem"\n',
    });
    const result = await configGet(broken, "/c", "update.ca_bundle");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("/etc/ok.pem\n");
    expect(result.stderr).toStartWith("WARNING: /c/20-bad.toml: key update.ca_bundle: expected a normalised absolute path");
    expect(result.stderr).toEndWith('got "relative.pem"; the boot skips that file too\n');
  });

  test("an unknown key or a table is exit status 2, naming the keys there are", async () => {
    for (const key of ["update.ca_bundel", "update", 'tmpfs."/nope".size', ""]) {
      const result = await configGet(site, "/build/config.d", key);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toStartWith(`Cannot get ${JSON.stringify(key)}: no such key in the config; the keys are labels.system, labels.backup,`);
      expect(result.stderr).toContain("update.ca_bundle");
    }
  });

  test("wrong arguments are exit status 2 with the usage; a missing folder or a file is exit status 1", async () => {
    for (const args of [[], ["/build/config.d"], ["/build/config.d", "update.ca_bundle", "extra"]]) {
      const result = await configGet(site, ...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`config-get needs a folder and a key, got ${args.length} argument`);
      expect(result.stderr).toContain("Usage: controller config-get DIR KEY");
    }
    expect(await configGet(site, "/build/config.d.typo", "update.ca_bundle")).toEqual({
      code: 1,
      stdout: "",
      stderr: "/build/config.d.typo: Cannot read config files: no such folder\n",
    });
    expect(await configGet(site, "/build/config.d/README", "update.ca_bundle")).toEqual({
      code: 1,
      stdout: "",
      stderr: "/build/config.d/README: Cannot read config files: /build/config.d/README is a regular file, expected a folder\n",
    });
  });

  test("main.ts runs it: the shipped config.d's CA bundle, as the dracut module asks for it", async () => {
    const main = resolve(import.meta.dir, "../../../controller/main.ts");
    const child = Bun.spawn([process.execPath, main, "config-get", resolve(import.meta.dir, "../../../config.d"), "update.ca_bundle"], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: "/etc/ssl/certs/ca-certificates.crt\n", stderr: "" });
  });
});
