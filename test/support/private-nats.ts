import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { takesSeveralFilters } from "../../src/relay/jetstream/topology.ts";

/** Which server a test needs: 2.9 takes one filter subject per consumer, 2.10 several. */
export type NatsLine = "2.9" | "2.10";

/** The binaries tried for a private server: the machine's, and the one `.ci/fetch-nats` puts in the worktree. */
const binaries = [
  "/usr/sbin/nats-server",
  join(import.meta.dirname, "../../.ci/nats-2.10/root/usr/sbin/nats-server"),
];

export type NatsServer = { url: string; version: string; stop(): Promise<void> } | { skip: string };

/**
 * A JetStream server of that line: NATS_URL or the machine's 127.0.0.1:4222
 * when it is one, else a private server on a free port from a binary of that
 * line, else the reason there is none.
 */
export async function natsServerOf(line: NatsLine): Promise<NatsServer> {
  const fits = (version: string | undefined) => takesSeveralFilters(version) === (line === "2.10");
  for (const url of new Set([process.env.NATS_URL, "nats://127.0.0.1:4222"])) {
    if (!url) continue;
    const version = await serverVersion(url);
    if (version && fits(version)) return { url, version, stop: async () => {} };
  }
  for (const bin of binaries) {
    if (!existsSync(bin)) continue;
    const version = /v(\d+\.\d+\.\d+)/.exec(execFileSync(bin, ["--version"]).toString())?.[1];
    if (fits(version)) return startPrivate(bin, version!);
  }
  const hint = line === "2.10" ? "; .ci/fetch-nats fetches nats-server 2.10.27" : "";
  return { skip: `no nats-server ${line} here (NATS_URL, 127.0.0.1:4222, ${binaries.join(", ")})${hint}` };
}

/** A nats-server binary of that line on this machine, with its version, or undefined. */
export function natsBinaryOf(line: NatsLine): { bin: string; version: string } | undefined {
  for (const bin of binaries) {
    if (!existsSync(bin)) continue;
    const version = /v(\d+\.\d+\.\d+)/.exec(execFileSync(bin, ["--version"]).toString())?.[1];
    if (takesSeveralFilters(version) === (line === "2.10")) return { bin, version: version! };
  }
  return undefined;
}

export interface ClusterNode {
  name: string;
  url: string;
  /** SIGKILL: no goodbye to its peers, nothing flushed. */
  kill(): Promise<void>;
  /** Starts it again on its ports and its store, as a crashed node comes back. */
  start(): Promise<void>;
}

export type NatsCluster =
  | { urls: string[]; version: string; nodes: ClusterNode[]; stop(): Promise<void> }
  | { skip: string };

/**
 * A private JetStream cluster of `size` nats-server 2.10 nodes on free
 * loopback ports: each with its client port, its cluster port (routes to
 * every other node), its name and its own store. Resolves once JetStream has
 * a meta leader, i.e. once a stream can be created.
 */
export async function startCluster(size = 3): Promise<NatsCluster> {
  const binary = natsBinaryOf("2.10");
  if (!binary)
    return { skip: `no nats-server 2.10 here (${binaries.join(", ")}); .ci/fetch-nats fetches one` };
  const name = `c${process.pid}`;
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })),
  );
  const nodes = ports.map(({ client, route }, i): ClusterNode & { cleanup(): void } => {
    const dir = mkdtempSync(join(tmpdir(), `nats-cluster-${i}-`));
    const url = `nats://127.0.0.1:${client}`;
    const routes = ports
      .filter((_, j) => j !== i)
      .map((p) => `nats://127.0.0.1:${p.route}`)
      .join(",");
    let child: ChildProcess | undefined;
    const node = {
      name: `n${i + 1}`,
      url,
      async start() {
        child = spawn(
          binary.bin,
          [
            ...["-js", "-a", "127.0.0.1", "-p", String(client), "-sd", dir, "-n", node.name],
            ...["--cluster_name", name, "--cluster", `nats://127.0.0.1:${route}`, "--routes", routes],
          ],
          { stdio: "ignore" },
        );
        const deadline = Date.now() + 10_000;
        while (!(await serverVersion(url))) {
          if (Date.now() > deadline) throw new Error(`cluster node ${node.name} did not start on ${url}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async kill() {
        const running = child;
        if (!running || running.exitCode !== null) return;
        const exited = new Promise((resolve) => running.once("exit", resolve));
        running.kill("SIGKILL");
        await exited;
      },
      cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return node;
  });
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    for (const n of nodes) n.cleanup();
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await untilJetStreamAnswers(
      nodes.map((n) => n.url),
      size,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: nodes.map((n) => n.url), version: binary.version, nodes, stop };
}

/**
 * Until every node has joined JetStream: a stream on all of them can be
 * created (an account request answers as soon as a meta leader is elected,
 * which two nodes can do without the third).
 */
async function untilJetStreamAnswers(urls: string[], size: number): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    // Slow on a loaded machine: each node must see the others as current before it takes a replica.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: "cluster_probe", subjects: ["cluster_probe"], num_replicas: size });
        await jsm.streams.delete("cluster_probe");
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await nc.close();
  }
}

async function serverVersion(url: string): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, reconnect: false, timeout: 2_000 });
    const version = nc.info?.version;
    await nc.close();
    return version;
  } catch {
    return undefined;
  }
}

async function startPrivate(bin: string, version: string): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), "nats-private-"));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
    stdio: "ignore",
  });
  const stop = async () => {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await serverVersion(url))) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${bin} did not accept connections on ${url}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, version, stop };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A JetStream server of a test's own that the test may stop and start again
 * on the same port with the same store (a NATS outage), never the shared one.
 * The newest binary here: NATS_SERVER_BIN, the fetched 2.10, else the machine's.
 */
export async function startRestartableNats() {
  const candidates = [process.env.NATS_SERVER_BIN, ...binaries.slice().reverse()];
  const bin = candidates.find((b): b is string => !!b && existsSync(b));
  if (!bin) throw new Error(`no nats-server binary (${candidates.filter(Boolean).join(", ")})`);
  const dir = mkdtempSync(join(tmpdir(), "nats-restartable-"));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: "ignore" });
    const deadline = Date.now() + 15_000;
    while (!(await serverVersion(url))) {
      if (Date.now() > deadline) throw new Error(`${bin} did not accept connections on ${url}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(signal);
    await exited;
  };
  await start();
  return {
    url,
    bin,
    start,
    stop,
    async close() {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
