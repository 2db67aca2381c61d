import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import type { BusEvent, Delivery } from "../src/relay/bus.ts";
import { JetStreamBus } from "../src/relay/jetstream-bus.ts";
import { testPrefix } from "./support/database.ts";

const sharedUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const buses: JetStreamBus[] = [];
const streams: string[] = [];
const cleanups: (() => void)[] = [];

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  const nc = await connect({ servers: sharedUrl });
  const jsm = await jetstreamManager(nc);
  for (const stream of streams) await jsm.streams.delete(stream).catch(() => {});
  await nc.close();
  for (const cleanup of cleanups) cleanup();
});

async function startBus(url: string): Promise<JetStreamBus> {
  const prefix = testPrefix();
  if (url === sharedUrl) streams.push(`${prefix}_events`);
  const bus = new JetStreamBus({ url, prefix });
  buses.push(bus);
  await bus.start();
  return bus;
}

function change(orderId: string, to: string): BusEvent {
  return {
    id: randomUUID(),
    type: "OrderStateChanged",
    orderId,
    occurredAt: new Date().toISOString(),
    payload: { from: null, to, customerId: "c" },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A NATS server of this test's own, so the test may pause it without touching the shared one. */
async function privateNats() {
  const dir = mkdtempSync(join(tmpdir(), "replay-nats-"));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const run = async () => {
    child = spawn("/usr/sbin/nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
      stdio: "ignore",
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const nc = await connect({ servers: url, reconnect: false });
        await nc.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const kill = () => {
    const stopped = new Promise((resolve) => child?.once("exit", resolve));
    child?.kill("SIGKILL");
    return stopped;
  };
  cleanups.push(() => {
    child?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  await run();
  return {
    url,
    /** A crash and a restart on the same port and files, as a rolling restart does. */
    restart: async (downMs: number) => {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await run();
    },
  };
}

describe("JetStreamBus.replay ends at the seam, not on silence", () => {
  it("returns at once from a replay of one order, whatever follows it on the stream", async () => {
    const bus = await startBus(sharedUrl);
    const mine = randomUUID();
    const other = randomUUID();
    const [placed] = await bus.publish([change(mine, "pending")]);
    await bus.publish([change(other, "pending"), change(mine, "confirmed"), change(other, "confirmed")]);
    const until = await bus.position();

    const read = async (afterSequence: number) => {
      const started = performance.now();
      const got: Delivery[] = [];
      for await (const d of bus.replay({
        types: ["OrderStateChanged"],
        orderId: mine,
        afterSequence,
        untilSequence: until,
      }))
        got.push(d);
      return { ms: performance.now() - started, got };
    };

    if (!placed?.ok) throw new Error("the placement was not stored");
    const history = await read(placed.sequence);
    expect(history.got.map((d) => d.event.payload.to)).toEqual(["confirmed"]);
    expect(history.ms).toBeLessThan(400);
    // Nothing of this order after its last change: a resume of it goes live at once.
    const nothing = await read(history.got[0]!.sequence);
    expect(nothing.got).toEqual([]);
    expect(nothing.ms).toBeLessThan(400);
  });

  it("reads on across a restart of the server, up to the seam", async () => {
    const nats = await privateNats();
    const bus = await startBus(nats.url);
    const order = randomUUID();
    const states = ["pending", "confirmed", "fulfilling", "completed"];
    for (const to of states) await bus.publish([change(order, to)]);
    const until = await bus.position();

    const got: string[] = [];
    const history = bus.replay({
      types: ["OrderStateChanged"],
      orderId: order,
      afterSequence: 0,
      untilSequence: until,
      pageSize: 1,
    });
    for await (const d of history) {
      got.push(d.event.payload.to as string);
      // The next page is asked for while the server is down, and its consumer is gone when it is back.
      if (got.length === 2) await nats.restart(1_500);
    }
    expect(got).toEqual(states);
  });
});
