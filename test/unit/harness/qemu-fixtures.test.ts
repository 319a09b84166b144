import { expect, test } from "bun:test";
import { connect } from "node:net";
import { deadPort } from "../../qemu/fixtures.ts";

/** Resolves with the error code a connection to 127.0.0.1:port ends in, or "connected". */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

test("a dead port is refused, and below the ports the kernel hands to the servers of test files running beside it", async () => {
  const firstEphemeral = Number((await Bun.file("/proc/sys/net/ipv4/ip_local_port_range").text()).trim().split(/\s+/)[0]);
  const ports = await Promise.all(Array.from({ length: 5 }, deadPort));
  for (const port of ports) {
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(firstEphemeral);
    expect(await tryConnect(port)).toBe("ECONNREFUSED");
  }
  // a server on port 0, as every test server listens, never gets one
  const servers = Array.from({ length: 20 }, () => Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("up") }));
  try {
    expect(servers.map((server) => server.port).filter((port) => port !== undefined && port < firstEphemeral)).toEqual([]);
  } finally {
    for (const server of servers) server.stop(true);
  }
});
