import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfirmPayment, OrderById, PlaceOrder } from "./support/operations.ts";
import { gqlData } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

const root = join(import.meta.dirname, "..");

/**
 * The newcomer's path: `npm start` with nothing configured. No DATABASE_URL,
 * no NATS_URL, no JWT_SECRET: embedded PGlite in DATA_DIR, the in-process bus,
 * and a ready token per role printed on stdout.
 */
describe("npm start with no configuration", () => {
  let child: ChildProcess;
  let dataDir: string;
  let stdout = "";
  let stderr = "";
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let url: string;
  let base: string;
  const printed = new Map<string, string>();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "order-gateway-embedded-"));
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "info" };
    for (const name of [
      "DATABASE_URL",
      "NATS_URL",
      "NATS_PREFIX",
      "JWT_SECRET",
      "ROLES",
      "SMTP_URL",
      "MODULES_REQUIRED_FOR_COMPLETION",
    ]) {
      delete env[name];
    }
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });

    // Started: the pino line naming the URL, then the token block after "JWT_SECRET is unset".
    url = await eventually(
      () => {
        if (child.exitCode !== null)
          throw new Error(`exited early (${child.exitCode}): ${stdout}\n${stderr}`);
        for (const line of stdout.split("\n")) {
          if (!line.startsWith("{")) continue;
          const entry = JSON.parse(line) as { msg?: string };
          const match = /^GraphQL on (http:\/\/localhost:\d+\/graphql)$/.exec(entry.msg ?? "");
          if (match) return match[1];
        }
        return undefined;
      },
      { timeoutMs: 30_000, what: `the "GraphQL on" log line (stdout so far: ${stdout} ${stderr})` },
    );
    base = url.replace(/\/graphql$/, "");
    await eventually(
      () => {
        const lines = stdout.split("\n");
        const start = lines.findIndex((l) => l.startsWith("JWT_SECRET is unset"));
        if (start < 0) return undefined;
        for (const line of lines.slice(start + 1)) {
          const match = /^ {2}(\S+(?: \S+)?)\s+Bearer (\S+)$/.exec(line);
          if (match) printed.set(match[1]!, match[2]!);
        }
        return printed.has("admin");
      },
      { timeoutMs: 10_000, what: "the printed tokens" },
    );
  }, 45_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("prints a token for each role", () => {
    expect([...printed.keys()].sort()).toEqual(
      ["admin", "customer", "partner logistics", "partner payments", "partner travelium"].sort(),
    );
    for (const token of printed.values()) expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    // The log names the embedded defaults it chose.
    const starting = stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { msg?: string; database?: string; bus?: string })
      .find((e) => e.msg === "starting");
    expect(starting).toMatchObject({ database: "pglite", bus: "in-process" });
  });

  it("answers /healthz and /readyz with 200", async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("takes a digital order to COMPLETED with a paid invoice, using the printed tokens", async () => {
    const customer = printed.get("customer")!;
    const payments = printed.get("partner payments")!;
    const placed = await gqlData(
      url,
      PlaceOrder,
      {
        input: {
          lines: [{ sku: "EBOOK-1", quantity: 1 }],
          contactEmail: "newcomer@example.com",
          idempotencyKey: "embedded-1",
        },
      },
      customer,
    );
    const order = placed.placeOrder.order;
    expect(order).toMatchObject({
      status: "PENDING",
      customerId: "customer-1",
      requiredModules: ["finance"],
      total: { amount: 1299, currency: "EUR" },
    });

    const confirmed = await gqlData(
      url,
      ConfirmPayment,
      { input: { orderId: order.id, paymentReference: "embedded-psp-1", amount: 1299, currency: "EUR" } },
      payments,
    );
    expect(["CONFIRMED", "FULFILLING", "COMPLETED"]).toContain(confirmed.confirmPayment.order.status);

    const completed = await eventually(
      async () => {
        const { order: read } = await gqlData(url, OrderById, { id: order.id }, customer);
        return read?.status === "COMPLETED" ? read : undefined;
      },
      { what: "the order COMPLETED" },
    );
    expect(completed.modules).toEqual([
      expect.objectContaining({
        __typename: "FinanceState",
        module: "finance",
        state: "paid",
        invoiceState: "PAID",
      }),
    ]);
    // A fresh DATA_DIR: the first invoice of this deployment.
    expect(completed.modules[0]).toMatchObject({ invoiceNumber: "INV-000001" });
  });

  it("stops on SIGTERM with exit code 0 within 10 s", async () => {
    expect(child.exitCode).toBeNull();
    const sent = Date.now();
    expect(child.kill("SIGTERM")).toBe(true);
    const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 10_000).unref());
    const result = await Promise.race([exited, timeout]);
    expect(result, `stdout: ${stdout}\nstderr: ${stderr}`).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(10_000);
    expect(stdout).toMatch(/"msg":"stopped"/);
  }, 15_000);
});
