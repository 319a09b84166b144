// A command of cli/ run as its own process, as the server commands' tests
// need: to be stopped by a signal, and read line by line as they run.

export type CommandProcess = Bun.Subprocess<"ignore", "pipe", "pipe">;

/** Runs `exported` of the module `file` with `args`, as main.ts would after the command's name, with `env` added to this process's environment. */
export function spawnCommand(file: string, exported: string, args: readonly string[], env: Record<string, string> = {}): CommandProcess {
  const script = `import { ${exported} } from ${JSON.stringify(file)}; process.exitCode = await ${exported}(process.argv.slice(1));`;
  return Bun.spawn([process.execPath, "-e", script, "--", ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
}

/** Its exit status and all it wrote, once it ends. */
export async function finishedCommand(child: CommandProcess): Promise<{ code: number; stdout: string; stderr: string }> {
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

/** Its stdout a line at a time (without the newline); an error when it ends first. */
export function stdoutLines(child: CommandProcess): () => Promise<string> {
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const { done, value } = await lines.read();
      if (done) throw new Error(`the command ended early; stdout so far: ${buffered}`);
      buffered += value;
    }
    const end = buffered.indexOf("\n");
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    return line;
  };
}
