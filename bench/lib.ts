// Shared by the benchmarks: figures and how they are printed. Each benchmark
// is a script that prints its section of bench/RESULTS.md (markdown) on
// standard output and its progress on standard error; bench/run puts the
// sections together. Benchmarks never fail on a slow machine: they measure.

/** The median of some figures (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The p-th percentile (0..100) by linear interpolation between the closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error("Cannot take a percentile of no figures");
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] ?? 0;
  const highValue = sorted[high] ?? lowValue;
  return lowValue + (highValue - lowValue) * (rank - low);
}

/** A markdown table; every cell is already text. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Progress on standard error, so standard output holds only the section. */
export function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

/** How many runs a benchmark makes: the RUNS environment variable (a whole number, at least 1) when set, else `fallback`. */
export function runsFrom(value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^[1-9][0-9]*$/.test(value)) throw new Error(`Cannot read RUNS from the environment: current value is "${value}", expected a whole number of at least 1`);
  return Number(value);
}

/** Seconds to fetch `bytes` at `bitsPerSecond`, protocol overhead left out: what an image costs a PXE boot. */
export function transferSeconds(bytes: number, bitsPerSecond: number): number {
  return (bytes * 8) / bitsPerSecond;
}

export const MiB = 1024 * 1024;
export const MB = 1_000_000;

/** "1.23" style numbers for tables. */
export function fixed(value: number, digits = 2): string {
  return value.toFixed(digits);
}

/** "met" or "not met" for a goal, with the figure it was judged on. */
export function goal(met: boolean): string {
  return met ? "met" : "**not met**";
}

/** Runs a command to its end, in `cwd` and with `env` added to this process's environment when given; a failure names the command line and what it printed. */
export function run(command: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): { stdout: string; stderr: string } {
  let result;
  try {
    result = Bun.spawnSync([...command], {
      stdout: "pipe",
      stderr: "pipe",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
    });
  } catch (error) {
    throw new Error(`Cannot run ${command.join(" ")}: ${(error as Error).message}`);
  }
  const stdout = result.stdout.toString();
  const stderr = result.stderr.toString();
  if (result.exitCode !== 0) throw new Error(`Cannot run ${command.join(" ")}: its exit status is ${result.exitCode}\n${stdout}${stderr}`);
  return { stdout, stderr };
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = server;
  server.stop(true);
  return port;
}
