// What the server commands (`serve`, `fleet-server`) share: options given as
// `--name value` pairs, a port, and running until a signal says stop.

/** `--name value` pairs, each option of `known` at most once, or what is wrong with them. */
export function parseOptions(args: readonly string[], known: readonly string[]): Map<string, string> | string {
  const values = new Map<string, string>();
  for (let index = 0; index < args.length; index += 2) {
    const option = args[index] ?? "";
    const value = args[index + 1];
    if (!known.includes(option)) return `Unknown option "${option}"`;
    if (value === undefined || value.startsWith("--")) return `${option} needs a value`;
    if (values.has(option)) return `${option} is given twice`;
    values.set(option, value);
  }
  return values;
}

/** The port of `--port`, or what is wrong with it. */
export function parsePort(text: string | undefined): number | string {
  if (text === undefined) return "--port N is missing";
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) return `--port needs a port number from 0 to 65535, got "${text}"`;
  return Number(text);
}

/**
 * Resolves with the signal, SIGINT or SIGTERM, that says stop. `ready` runs
 * once the handlers are in place, so whoever waits for its line can stop the
 * server.
 */
export function untilStopSignal(ready: () => void): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolveSignal) => {
    const stopOn = (name: NodeJS.Signals): void => {
      process.off("SIGINT", stopOn);
      process.off("SIGTERM", stopOn);
      resolveSignal(name);
    };
    process.on("SIGINT", stopOn);
    process.on("SIGTERM", stopOn);
    ready();
  });
}
