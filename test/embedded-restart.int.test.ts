import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { and, asc, eq } from "drizzle-orm";
import { print } from "graphql";
import { describe, expect, it } from "vitest";
import { readConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { finance } from "../src/modules/finance/index.ts";
import { modules } from "../src/modules/index.ts";
import { orderEvents } from "../src/relay/tables.ts";
import { type Service, startService } from "../src/server.ts";
import { OrderStateChanged } from "./support/operations.ts";
import { sagaClient } from "./support/saga.ts";
import { testSecret, tokens, wsClient } from "./support/service.ts";
import { eventually } from "./support/wait.ts";

/**
 * The embedded default keeps its bus in memory. An event the bus had taken
 * but no listener had handled when the process stopped must still be handled
 * after a restart.
 */
// Each test starts the embedded service twice: PostgreSQL in WebAssembly, its cluster made and every
// migration run at each start: 9 s alone on a 2-core machine, 27 s to past the default 30 s beside the
// rest of the suite.
describe("the embedded default across a restart", { timeout: 90_000 }, () => {
  it("hands the events a listener had not handled to the new in-process bus", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "embedded-restart-"));
    let financeDown = true;
    let refusals = 0;
    const issue = finance.on.OrderConfirmed!;
    const flakyIssue: typeof issue = (event, state) => {
      if (financeDown) {
        refusals++;
        throw new Error("finance is down");
      }
      return issue(event, state);
    };
    const flaky = modules.map((m) =>
      m === finance ? { ...finance, on: { ...finance.on, OrderConfirmed: flakyIssue } } : m,
    );
    const start = () =>
      startService({
        config: readConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "silent" }),
        logger: createLogger("silent"),
        jwtSecret: testSecret,
        modules: flaky,
        // The next try would be an hour away: only the restart can bring the event back.
        retry: { maxAttempts: 10, backoffMs: () => 3_600_000 },
      });

    let service: Service = await start();
    let saga = sagaClient(`http://127.0.0.1:${service.port}/graphql`);
    const order = await saga.placeAndConfirm(["EBOOK-1"]);
    await eventually(() => refusals > 0, { what: "Finance's failed try" });
    await service.stop();

    financeDown = false;
    service = await start();
    saga = sagaClient(`http://127.0.0.1:${service.port}/graphql`);
    const done = await saga.until(order.id, { status: "COMPLETED", rows: { finance: "paid" } });
    // Handled once: one invoice, whatever was handed over again.
    expect(done.events.filter((e) => e.type === "InvoiceIssued")).toHaveLength(1);
    expect(done.events.filter((e) => e.type === "OrderStateChanged")).toHaveLength(4);
    await service.stop();
  });

  it("answers BAD_USER_INPUT to a resume after a change from before the restart, and resumes after a later one", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "embedded-resume-"));
    const start = () =>
      startService({
        config: readConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "silent" }),
        logger: createLogger("silent"),
        jwtSecret: testSecret,
      });
    let service = await start();
    let url = `http://127.0.0.1:${service.port}/graphql`;
    const before = await sagaClient(url).placeAndConfirm(["EBOOK-1"]);
    await sagaClient(url).until(before.id, { status: "COMPLETED" });
    const beforeChanges = await stateChangeIds(service, before.id);
    await service.stop();

    service = await start();
    url = `http://127.0.0.1:${service.port}/graphql`;
    // The new bus numbers its positions from 1 again: these land where the first order's changes were.
    const saga = sagaClient(url);
    const after = await saga.placeAndConfirm(["EBOOK-1"]);
    await saga.until(after.id, { status: "COMPLETED" });
    const afterChanges = await stateChangeIds(service, after.id);

    const customer = await tokens.customer();
    for (const eventId of [beforeChanges[0]!, beforeChanges[3]!]) {
      const refused = await subscribe(url, customer, { after: eventId }, 1);
      expect(refused.changes).toEqual([]);
      expect(refused.error).toMatch(/BAD_USER_INPUT/);
      expect(refused.error).toMatch(/restart/);
    }
    const resumed = await subscribe(url, customer, { after: afterChanges[0]! }, 3);
    expect(resumed.error).toBeUndefined();
    expect(resumed.changes).toEqual(
      ["CONFIRMED", "FULFILLING", "COMPLETED"].map((to) => ({ orderId: after.id, to })),
    );
    await service.stop();
  });
});

async function stateChangeIds(service: Service, orderId: string): Promise<string[]> {
  const rows = await service.database.db
    .select({ id: orderEvents.id })
    .from(orderEvents)
    .where(and(eq(orderEvents.orderId, orderId), eq(orderEvents.type, "OrderStateChanged")))
    .orderBy(asc(orderEvents.seq));
  return rows.map((r) => r.id);
}

/** Subscribes until `n` changes came or the server ended it; a quiet second after them shows nothing more comes. */
async function subscribe(url: string, token: string, variables: { after?: string }, n: number) {
  const client = wsClient(url, token);
  const changes: { orderId: string; to: string }[] = [];
  let error: string | undefined;
  let ended = false;
  client.subscribe(
    { query: print(OrderStateChanged), variables },
    {
      next: ({ data, errors }) => {
        if (errors) error = JSON.stringify(errors);
        else {
          const { orderId, to } = (data as { orderStateChanged: { orderId: string; to: string } })
            .orderStateChanged;
          changes.push({ orderId, to });
        }
      },
      error: (e) => {
        error = JSON.stringify(e);
        ended = true;
      },
      complete: () => {
        ended = true;
      },
    },
  );
  await eventually(() => ended || changes.length >= n, { what: "the changes or the refusal" });
  await new Promise((r) => setTimeout(r, 500));
  await client.dispose();
  return { changes, error };
}
