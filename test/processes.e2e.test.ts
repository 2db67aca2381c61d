import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, natsUrl, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const root = join(import.meta.dirname, "..");

/** `npm start` as an operator runs it split by ROLES: one OS process per role, one database, one NATS. */
class RoleProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output = "";

  constructor(roles: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env: { ...process.env, ...env, ROLES: roles, PORT: "0", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
  }

  /** The URL it logged: GraphQL for the gateway, the probes for the others. */
  async url(): Promise<string> {
    return eventually(
      () => {
        if (this.child.exitCode !== null) throw new Error(`exited: ${this.output}`);
        const match = /"msg":"(?:GraphQL|probes and metrics) on (http:\/\/localhost:\d+\/\w+)"/.exec(
          this.output,
        );
        return match?.[1];
      },
      // Seven TypeScript processes starting at once on two cores, beside other test files: give them time.
      { what: "the process to start", timeoutMs: 60_000 },
    );
  }
}

describe("each role in its own process", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const processes: RoleProcess[] = [];
  let saga: ReturnType<typeof sagaClient>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: natsUrl,
      NATS_PREFIX: prefix,
      JWT_SECRET: "test-secret-not-for-production",
      DATA_DIR: mkdtempSync(join(tmpdir(), "roles-")),
    };
    // The gateway first: its migrations run before the others start (they would queue on the lock anyway).
    const gateway = new RoleProcess("gateway,relay", env);
    processes.push(gateway);
    const url = (await gateway.url()).replace("localhost", "127.0.0.1");
    for (const roles of ["orders", "finance", "logistics", "travelium", "subscription", "notifier"]) {
      processes.push(new RoleProcess(roles, env));
    }
    await Promise.all(processes.map((p) => p.url()));
    saga = sagaClient(url);
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    await deleteStream(prefix);
    await db?.drop();
  });

  it("completes a mixed order and rolls a cancelled one back, every module in its own process", async () => {
    const order = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS", "BOX-MONTHLY"]);
    await saga.until(order.id, {
      rows: { logistics: "waiting", travelium: "reserved", subscription: "active" },
    });
    await saga.shipment(order.id, "DELIVERED");
    await saga.booking(order.id, "TRAVELLED");
    const done = await saga.until(order.id, { status: "COMPLETED" });
    expect(done.rows).toEqual({
      finance: "paid",
      logistics: "delivered",
      travelium: "travelled",
      subscription: "active",
    });

    const cancelled = await saga.placeAndConfirm(["MUG-1", "TRIP-LIS", "BOX-MONTHLY"]);
    await saga.cancel(cancelled.id);
    await saga.until(cancelled.id, {
      status: "CANCELLED",
      rows: {
        finance: "refunded",
        logistics: "returned",
        travelium: "cancelled",
        subscription: "terminated",
      },
    });
  });

  it("answers the probes in every process, and every process stops cleanly on SIGTERM", async () => {
    for (const p of processes) {
      const base = (await p.url()).replace(/\/\w+$/, "");
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    }
    for (const p of processes) p.child.kill("SIGTERM");
    const codes = await Promise.all(processes.map((p) => p.exited));
    expect(codes).toEqual(processes.map(() => 0));
    for (const p of processes) expect(p.output).toContain('"msg":"stopped"');
  });
});
