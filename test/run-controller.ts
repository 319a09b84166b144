// The controller's commands as a person runs them: through bun, from the
// sources (the QEMU tests run the compiled binary).

import { resolve } from "node:path";

const MAIN = resolve(import.meta.dir, "../controller/main.ts");

export async function controller(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}
