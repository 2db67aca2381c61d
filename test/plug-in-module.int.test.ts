import { sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modules } from "../src/modules/index.ts";
import { defineModule } from "../src/statemachine/module.ts";
import { moduleStateTable } from "../src/statemachine/module-table.ts";
import { createTestDatabase, testPrefix } from "./support/database.ts";
import { sagaClient } from "./support/saga.ts";
import { deleteStream, startTestService, type TestService } from "./support/service.ts";

/**
 * An 8th module defined only here, plugged in the way src/modules/subscription
 * was: its own table and definition, added to the module list. No other module
 * knows about it.
 */
const warrantyStates = ["open", "registered", "void"] as const;
const warrantyCards = moduleStateTable("warranty_cards", warrantyStates, {});

/** Registration is refused (and retried) until this opens, so the test can watch the order wait for the warranty. */
let registrationOpen = false;
const openRegistration = () => {
  registrationOpen = true;
};

const warranty = defineModule({
  name: "warranty",
  table: warrantyCards,
  initial: "open",
  states: warrantyStates,
  events: { open: "WarrantyOpen", registered: "WarrantyRegistered", void: "WarrantyVoid" },
  transitions: { open: ["registered", "void"], registered: ["void"] },
  terminalHappy: "registered",
  involvedIn: (order) => order.lines.some((l) => l.kind === "physical"),
  graphql: { typeName: "WarrantyState", stateEnum: "WarrantyCardState", stateField: "warrantyState" },
  on: {
    OrderConfirmed: () => [{ kind: "create", state: "open", columns: {} }],
    ShipmentDelivered: () =>
      registrationOpen
        ? [{ kind: "move", to: "registered" }]
        : [{ kind: "retry", reason: "registration is not open yet" }],
  },
  onCancel: () => [{ kind: "move", to: "void" }],
});

describe("a module defined outside src/modules", () => {
  const prefix = testPrefix();
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let service: TestService;
  let saga: ReturnType<typeof sagaClient>;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Its migration, as `npm run db:generate` would write it for the table above.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`create table warranty_cards (
      order_id uuid primary key, state text not null, version integer not null default 1,
      created_at timestamptz not null default now(), updated_at timestamptz not null default now())`);
    await client.end();
    service = await startTestService({
      databaseUrl: db.url,
      natsPrefix: prefix,
      modules: [...modules, warranty],
      // Subscription is left out: its orders must not wait for it.
      env: { MODULES_REQUIRED_FOR_COMPLETION: "finance,logistics,warranty" },
      roles: "gateway,relay,orders,finance,logistics,warranty",
    });
    saga = sagaClient(service.url!);
  });

  afterAll(async () => {
    await service?.stop();
    await deleteStream(prefix);
    await db?.drop();
  });

  it("is required when configured, and the order waits for it", async () => {
    const order = await saga.placeAndConfirm(["MUG-1"]);
    const started = await saga.until(order.id, { rows: { logistics: "waiting", warranty: "open" } });
    expect(started.requiredModules).toEqual(["finance", "logistics", "warranty"]);

    await saga.shipment(order.id, "DELIVERED");
    await saga.until(order.id, { rows: { logistics: "delivered", finance: "paid" } });
    await new Promise((r) => setTimeout(r, 500));
    expect((await saga.read(order.id)).status).toBe("FULFILLING");

    openRegistration();
    const done = await saga.until(order.id, { status: "COMPLETED", rows: { warranty: "registered" } });
    const types = done.events.map((e) => e.type);
    expect(types.indexOf("WarrantyRegistered")).toBeLessThan(types.lastIndexOf("OrderStateChanged"));
  });

  it("rolls back on cancel like the others", async () => {
    const order = await saga.placeAndConfirm(["MUG-1"]);
    await saga.until(order.id, { rows: { warranty: "open" } });
    await saga.cancel(order.id);
    await saga.until(order.id, { status: "CANCELLED", rows: { warranty: "void", logistics: "returned" } });
  });

  it("lets an order with a subscription line complete without Subscription when the configuration leaves it out", async () => {
    const order = await saga.placeAndConfirm(["BOX-MONTHLY"]);
    const done = await saga.until(order.id, { status: "COMPLETED" });
    expect(done.requiredModules).toEqual(["finance"]);
    // Subscription does not run here at all: it never wrote a row, and the order did not wait for one.
    expect(done.rows.subscription).toBeUndefined();
    const rows = await service.service.database.db.execute(
      sql`select count(*)::int as n from subscription_contracts`,
    );
    expect((rows as unknown as { rows: { n: number }[] }).rows[0]!.n).toBe(0);
  });
});
