/**
 * The shared state machine's commands, as the gateway calls them: read, let
 * the pure decider decide, write the state change and its outbox events
 * atomically (the hot ones in one statement, no transaction), return. None
 * of them does a module's work.
 */
import { createHash, randomUUID } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import { type Db, type Executor, query } from "../db/database.ts";
import { refuse } from "../errors.ts";
import { enqueue } from "../relay/outbox.ts";
import {
  decideCancel,
  decideConfirmation,
  decidePlacement,
  type PaymentCallback,
  type PlaceOrderCommand,
} from "./decide.ts";
import type { ConfirmedLine } from "./events.ts";
import type { KnownProducts } from "./known-products.ts";
import type { ModuleDefinition } from "./module.ts";
import { insertPlacement } from "./placement.ts";
import type { RecentOrders } from "./recent-orders.ts";
import { orderStatuses } from "./states.ts";
import { type OrderRow, orderLines, partnerReports, salesOrders } from "./tables.ts";
import {
  cancelOrderAtOnce,
  lockOrder,
  orderRow,
  orderStateChanged,
  transitionOrderAtOnce,
} from "./transition.ts";

export interface CommandResult {
  order: OrderRow;
  eventId: string;
}

export interface CommandDeps {
  db: Db;
  modules: readonly ModuleDefinition[];
  requiredForCompletion: readonly string[];
  /** The products this process read, checked by each placement's statement. */
  knownProducts: KnownProducts;
  /** The orders this process placed lately, for the payment callback's decision. */
  recentOrders: RecentOrders;
}

function requestHash(command: PlaceOrderCommand): string {
  const lines = command.lines.map((l) => [l.sku, l.quantity]);
  return createHash("sha256")
    .update(JSON.stringify([lines, command.contactEmail]))
    .digest("hex");
}

/**
 * Same customer and key: the same order and eventId come back; other input
 * under the key is CONFLICT. One statement, no transaction, when this process
 * knows the products: it inserts the order and, only when it did, its lines
 * and its events, provided every product is still as priced (PostgreSQL runs
 * a statement atomically); else the products are read first. The key's
 * unique index tells a repeat, so a first placement does not look for an
 * earlier one; the same statement answers an earlier order under the key.
 */
export async function placeOrder(
  deps: CommandDeps,
  customerId: string,
  command: PlaceOrderCommand,
  actor = `customer:${customerId}`,
): Promise<CommandResult> {
  const hash = requestHash(command);
  const skus = [...new Set(command.lines.map((l) => l.sku))];
  let fresh = false;
  for (let tries = 1; ; tries++) {
    const catalog = await deps.knownProducts.get(deps.db, skus, fresh);
    let placement: ReturnType<typeof decidePlacement>;
    try {
      placement = decidePlacement(command, catalog.products, deps.modules, deps.requiredForCompletion);
    } catch (error) {
      // Refused only on products as the database has them now.
      if (!catalog.read) {
        fresh = true;
        continue;
      }
      // A repeat is answered as the first time was, whatever the catalog says now.
      const earlier = await findByKey(deps.db, customerId, command.idempotencyKey);
      if (earlier) return replayPlacement(earlier, hash);
      throw error;
    }
    const orderId = randomUUID();
    // The placement's eventId is its OrderStateChanged, so a client can subscribe `after` it.
    const placedEventId = randomUUID();
    const answer = await insertPlacement(
      deps.db,
      {
        id: orderId,
        status: "pending",
        customerId,
        contactEmail: command.contactEmail,
        totalAmount: placement.totalAmount,
        currency: placement.currency,
        requiredModules: placement.requiredModules,
        involvedModules: placement.involvedModules,
        idempotencyKey: command.idempotencyKey,
        requestHash: hash,
        placedEventId,
        // Millisecond precision, like the cursors of the orders list that compare with it.
        createdAt: new Date(),
      },
      placement.lines,
      [
        {
          id: placedEventId,
          type: orderStateChanged,
          orderId,
          payload: { from: null, to: "pending", customerId },
          actor,
        },
        {
          type: "OrderPlaced",
          orderId,
          payload: {
            customerId,
            lines: placement.lines,
            totalAmount: placement.totalAmount,
            currency: placement.currency,
            involvedModules: placement.involvedModules,
            requiredModules: placement.requiredModules,
          },
          actor,
        },
      ],
      [...catalog.products.values()],
    );
    if (answer.kind === "order" && answer.placed) {
      const lines = placement.lines.map(({ sku, kind, quantity }) => ({ sku, kind, quantity }));
      deps.recentOrders.remember({ order: answer.order, lines });
      return { order: answer.order, eventId: placedEventId };
    }
    if (answer.kind === "order") return replayPlacement(answer.order, hash);
    if (answer.kind === "taken") {
      // A concurrent request under the key won the race: answer with its order.
      return replayPlacement((await findByKey(deps.db, customerId, command.idempotencyKey))!, hash);
    }
    // Repriced: a product changed since this process read it. Read again; each try reads what is current.
    if (tries >= readsToSettle) throw new Error(`the catalog changed under the placement ${tries} times`);
    fresh = true;
  }
}

async function findByKey(db: Executor, customerId: string, key: string) {
  const [order] = await db
    .select()
    .from(salesOrders)
    .where(and(eq(salesOrders.customerId, customerId), eq(salesOrders.idempotencyKey, key)));
  return order;
}

function replayPlacement(order: OrderRow, hash: string): CommandResult {
  if (order.requestHash !== hash) refuse("CONFLICT", "idempotencyKey was already used with other input");
  return { order, eventId: order.placedEventId };
}

/**
 * A status only moves forward, so it changes at most this often: reading
 * again after each change a command lost to, this many reads settle it.
 */
const readsToSettle = orderStatuses.length;

/**
 * A command on an existing order without a transaction: `attempt` reads the
 * order, lets its decider decide, and carries the decision out in one guarded
 * statement, or answers undefined when the guard matched nothing (a
 * concurrent change got there first); then it reads and decides again.
 */
async function untilSettled(attempt: () => Promise<CommandResult | undefined>): Promise<CommandResult> {
  for (let reads = 0; reads < readsToSettle; reads++) {
    const result = await attempt();
    if (result) return result;
  }
  throw new Error(`the order changed under the command ${readsToSettle} times`);
}

/** What a confirmation tells the modules of the order's lines, read with the order in one statement. */
const linesOfOrder = sql`(select coalesce(json_agg(json_build_object(
    'sku', ${orderLines.sku}, 'kind', ${orderLines.kind}, 'quantity', ${orderLines.quantity})
    order by ${orderLines.position}), '[]') from ${orderLines} where ${orderLines.orderId} = ${salesOrders.id})`;

/**
 * The payment callback: PENDING → CONFIRMED, and OrderConfirmed for every
 * module. One statement when this process placed the order lately (the move,
 * guarded by the status it knows); else, or when the guard finds the order
 * moved, two: the order with its lines, then the move.
 */
export async function confirmPayment(
  deps: CommandDeps,
  orderId: string,
  payment: PaymentCallback,
  actor?: string,
): Promise<CommandResult> {
  const recent = deps.recentOrders.get(orderId);
  if (recent && decidesToConfirm(recent.order, payment)) {
    const moved = await confirm(deps, recent.order, recent.lines, payment, actor);
    if (moved) return moved;
  }
  return untilSettled(async () => {
    const [read] = await query<Record<string, unknown> & { lines: ConfirmedLine[] }>(
      deps.db,
      sql`select ${orderRow.columns}, ${linesOfOrder} as lines from ${salesOrders}
        where ${salesOrders.id} = ${orderId}`,
    );
    if (!read) return refuse("NOT_FOUND", "no such order");
    const order = orderRow.read(read);
    if (decideConfirmation(order, payment) === "replay") return { order, eventId: order.confirmedEventId! };
    return confirm(deps, order, read.lines, payment, actor);
  });
}

/** Whether the decider would move this order: a replay or a refusal is answered from a fresh read only. */
function decidesToConfirm(order: OrderRow, payment: PaymentCallback): boolean {
  try {
    return decideConfirmation(order, payment) === "confirm";
  } catch {
    return false;
  }
}

/** The confirmation's one statement; undefined when the order is no longer in the status read. */
async function confirm(
  deps: CommandDeps,
  order: OrderRow,
  lines: ConfirmedLine[],
  payment: PaymentCallback,
  actor: string | undefined,
): Promise<CommandResult | undefined> {
  const orderId = order.id;
  const confirmedEventId = randomUUID();
  deps.recentOrders.forget(orderId);
  const moved = await transitionOrderAtOnce(deps.db, order, "confirmed", {
    eventId: confirmedEventId,
    actor,
    set: { paymentReference: payment.paymentReference, confirmedEventId },
    events: [
      {
        type: "OrderConfirmed",
        orderId,
        // Everything a module needs to start its work, so that none of them has to ask Sales.
        payload: {
          paymentReference: payment.paymentReference,
          amount: payment.amount,
          currency: payment.currency,
          lines,
          involvedModules: order.involvedModules,
        },
      },
    ],
  });
  return moved && { order: moved.order, eventId: confirmedEventId };
}

/**
 * Cancel (or a module's veto): every involved module rolls back on
 * OrderCancelled. Two round trips: the order, then the move.
 */
export async function cancelOrder(
  deps: CommandDeps,
  orderId: string,
  reason: string,
  canSee: (order: OrderRow) => boolean = () => true,
  actor?: string,
): Promise<CommandResult> {
  // A payment callback after this cancel should not try the move from PENDING first.
  deps.recentOrders.forget(orderId);
  return untilSettled(async () => {
    const [order] = await orderRow.all(
      deps.db,
      sql`select ${orderRow.columns} from ${salesOrders} where ${salesOrders.id} = ${orderId}`,
    );
    if (!order || !canSee(order)) return refuse("NOT_FOUND", "no such order");
    if (decideCancel(order, reason) === "unchanged") return { order, eventId: order.cancelledEventId! };
    const moved = await cancelOrderAtOnce(deps.db, order, reason, actor);
    return moved && { order: moved.order, eventId: moved.stateChanged.id };
  });
}

/**
 * A partner's progress report (reportShipment, reportBooking): recorded under
 * its idempotency key and enqueued for the module's listener, which applies
 * it. Nothing here moves the module's row.
 */
export async function reportProgress(
  deps: CommandDeps,
  module: ModuleDefinition & { report: NonNullable<ModuleDefinition["report"]> },
  orderId: string,
  report: { state: string; idempotencyKey: string; reportedBy: string },
  actor?: string,
): Promise<CommandResult> {
  const key = report.idempotencyKey;
  if (key.length === 0 || key.length > 200)
    refuse("BAD_USER_INPUT", "idempotencyKey must be 1 to 200 characters");
  return deps.db.transaction(async (tx) => {
    const order = (await lockOrder(tx, orderId)) ?? refuse("NOT_FOUND", "no such order");
    const [earlier] = await tx
      .select()
      .from(partnerReports)
      .where(
        and(
          eq(partnerReports.orderId, orderId),
          eq(partnerReports.module, module.name),
          eq(partnerReports.idempotencyKey, key),
        ),
      );
    if (earlier) {
      if (earlier.state !== report.state)
        refuse("CONFLICT", "idempotencyKey was already used with another state");
      return { order, eventId: earlier.eventId };
    }
    if (!order.involvedModules.includes(module.name)) {
      refuse("INVALID_TRANSITION", `this order involves no ${module.name} work`);
    }
    if (order.status === "pending") refuse("INVALID_TRANSITION", "the order is not confirmed yet");
    const [event] = await enqueue(tx, [
      {
        type: module.report.event,
        orderId,
        payload: { state: report.state, idempotencyKey: key, reportedBy: report.reportedBy },
        actor,
      },
    ]);
    await tx
      .insert(partnerReports)
      .values({ orderId, module: module.name, idempotencyKey: key, state: report.state, eventId: event!.id });
    return { order, eventId: event!.id };
  });
}
