import { and, asc, desc, eq, lt, or, type SQL } from "drizzle-orm";
import { refuse } from "../errors.ts";
import { orderEvents } from "../relay/tables.ts";
import { explainCompletion, type ModuleCompletion } from "../statemachine/decide.ts";
import { nextStatuses, orderStatuses } from "../statemachine/states.ts";
import { type OrderRow, orderLines, salesOrders } from "../statemachine/tables.ts";
import { canSee, requireCaller, requireRole } from "./auth.ts";
import { builder, type Context } from "./builder.ts";
import { upperEnum } from "./enums.ts";
import { loadModuleStates, ModuleStateRef } from "./module-state.ts";
import { MoneyRef, ProductKindEnum } from "./product.ts";

export const OrderStatusEnum = builder.enumType("OrderStatus", {
  description: "The five domain-level order states shared by every module.",
  values: upperEnum(orderStatuses),
});

const OrderLineRef = builder.objectRef<typeof orderLines.$inferSelect>("OrderLine").implement({
  fields: (t) => ({
    sku: t.exposeString("sku"),
    name: t.exposeString("name"),
    kind: t.field({ type: ProductKindEnum, resolve: (l) => l.kind as never }),
    quantity: t.exposeInt("quantity"),
    unitPrice: t.field({ type: MoneyRef, resolve: (l) => ({ amount: l.unitAmount, currency: l.currency }) }),
  }),
});

const OrderEventRef = builder.objectRef<typeof orderEvents.$inferSelect>("OrderEvent").implement({
  description: "One entry of an order's timeline: an event from the order_events outbox.",
  fields: (t) => ({
    id: t.exposeID("id", { description: "The event id; also the idempotency key consumers use." }),
    type: t.exposeString("type", {
      description: "Event type, e.g. OrderPlaced, OrderConfirmed, InvoiceIssued, OrderStateChanged.",
    }),
    occurredAt: t.field({ type: "DateTime", resolve: (e) => e.occurredAt }),
  }),
});

const ModuleCompletionRef = builder.objectRef<ModuleCompletion>("ModuleCompletion").implement({
  fields: (t) => ({
    module: t.exposeString("module"),
    required: t.exposeBoolean("required", {
      description: "Whether the order waits for this module to complete.",
    }),
    state: t.exposeString("state", {
      nullable: true,
      description: "Null while the module has no row for the order yet.",
    }),
    terminalHappy: t.exposeString("terminalHappy", { description: "The state in which the module is done." }),
    done: t.exposeBoolean("done"),
  }),
});

const OrderCompletionRef = builder
  .objectRef<{ status: OrderRow["status"]; modules: ModuleCompletion[] }>("OrderCompletion")
  .implement({
    fields: (t) => ({
      modules: t.field({ type: [ModuleCompletionRef], resolve: (c) => c.modules }),
      waitingFor: t.stringList({
        description: "Required modules not done yet; empty once the order can complete (or has).",
        resolve: (c) => c.modules.filter((m) => m.required && !m.done).map((m) => m.module),
      }),
      complete: t.boolean({ resolve: (c) => c.status === "completed" }),
    }),
  });

export const OrderRef = builder.objectRef<OrderRow>("Order").implement({
  fields: (t) => ({
    id: t.exposeID("id", { description: "UUID." }),
    status: t.field({ type: OrderStatusEnum, resolve: (o) => o.status }),
    customerId: t.exposeID("customerId"),
    contactEmail: t.exposeString("contactEmail"),
    lines: t.field({
      type: [OrderLineRef],
      resolve: (o, _args, ctx) =>
        ctx.database.db
          .select()
          .from(orderLines)
          .where(eq(orderLines.orderId, o.id))
          .orderBy(asc(orderLines.position)),
    }),
    total: t.field({ type: MoneyRef, resolve: (o) => ({ amount: o.totalAmount, currency: o.currency }) }),
    modules: t.field({
      type: [ModuleStateRef],
      description: "Rows that modules have written for this order; a module that is not involved has none.",
      resolve: (o, _args, ctx) => loadModuleStates(ctx.database.db, ctx.modules, o),
    }),
    requiredModules: t.exposeStringList("requiredModules", {
      description: "Modules whose terminal-happy state this order waits for before it completes.",
    }),
    involvedModules: t.exposeStringList("involvedModules", {
      description: "Every module this order involves, fixed when it was placed.",
    }),
    completion: t.field({
      type: OrderCompletionRef,
      description: "What completion waits for: each involved module, whether it is required and done.",
      resolve: async (o, _args, ctx) => {
        const rows = await loadModuleStates(ctx.database.db, ctx.modules, o);
        const modules = explainCompletion(o, new Map(rows.map((r) => [r.module, r.state])), ctx.modules);
        return { status: o.status, modules };
      },
    }),
    nextStatuses: t.field({
      type: [OrderStatusEnum],
      description: "The states the shared state machine allows next from this one.",
      resolve: (o) => nextStatuses(o.status),
    }),
    events: t.field({
      type: [OrderEventRef],
      description: "The order's events, oldest first.",
      resolve: (o, _args, ctx) =>
        ctx.database.db
          .select()
          .from(orderEvents)
          .where(eq(orderEvents.orderId, o.id))
          .orderBy(asc(orderEvents.seq)),
    }),
    cancellationReason: t.exposeString("cancellationReason", { nullable: true }),
    createdAt: t.field({ type: "DateTime", resolve: (o) => o.createdAt }),
    updatedAt: t.field({ type: "DateTime", resolve: (o) => o.updatedAt }),
  }),
});

/** The order if the caller may see it; undefined reads the same as "no such order". */
export async function visibleOrder(ctx: Context, id: string): Promise<OrderRow | undefined> {
  const caller = requireCaller(ctx.auth);
  if (!isUuid(id)) return undefined;
  const [order] = await ctx.database.db.select().from(salesOrders).where(eq(salesOrders.id, id));
  return order && canSee(caller, order) ? order : undefined;
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

builder.queryField("order", (t) =>
  t.field({
    type: OrderRef,
    nullable: true,
    description: "Null when the order does not exist or the caller may not see it.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => (await visibleOrder(ctx, id)) ?? null,
  }),
);

const PageInfoRef = builder
  .objectRef<{ hasNextPage: boolean; endCursor: string | null }>("PageInfo")
  .implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean("hasNextPage"),
      endCursor: t.exposeString("endCursor", { nullable: true }),
    }),
  });

const OrderEdgeRef = builder.objectRef<{ cursor: string; node: OrderRow }>("OrderEdge").implement({
  fields: (t) => ({
    cursor: t.exposeString("cursor"),
    node: t.field({ type: OrderRef, resolve: (e) => e.node }),
  }),
});

const OrderConnectionRef = builder
  .objectRef<{
    edges: { cursor: string; node: OrderRow }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  }>("OrderConnection")
  .implement({
    fields: (t) => ({
      edges: t.field({ type: [OrderEdgeRef], resolve: (c) => c.edges }),
      pageInfo: t.field({ type: PageInfoRef, resolve: (c) => c.pageInfo }),
    }),
  });

/** Opaque to clients: the position of an order in "newest first". */
function encodeCursor(order: OrderRow): string {
  return Buffer.from(JSON.stringify([order.createdAt.toISOString(), order.id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !isUuid(id)) throw new Error("bad cursor");
    return { createdAt: date, id };
  } catch {
    return refuse("BAD_USER_INPUT", "after is not a cursor this API gave out");
  }
}

builder.queryField("orders", (t) =>
  t.field({
    type: OrderConnectionRef,
    description: "A customer sees their own orders; an admin sees all. Newest first.",
    args: {
      first: t.arg.int({ defaultValue: 20 }),
      after: t.arg.string(),
      status: t.arg({ type: OrderStatusEnum }),
    },
    resolve: async (_root, args, ctx) => {
      const caller = requireRole(ctx.auth, "customer");
      const first = args.first ?? 20;
      if (first < 1 || first > 100) refuse("BAD_USER_INPUT", "first must be between 1 and 100");
      const conditions: SQL[] = [];
      if (caller.role === "customer") conditions.push(eq(salesOrders.customerId, caller.id));
      if (args.status) conditions.push(eq(salesOrders.status, args.status));
      if (args.after) {
        const { createdAt, id } = decodeCursor(args.after);
        conditions.push(
          or(
            lt(salesOrders.createdAt, createdAt),
            and(eq(salesOrders.createdAt, createdAt), lt(salesOrders.id, id)),
          )!,
        );
      }
      const rows = await ctx.database.db
        .select()
        .from(salesOrders)
        .where(and(...conditions))
        .orderBy(desc(salesOrders.createdAt), desc(salesOrders.id))
        .limit(first + 1);
      const page = rows.slice(0, first);
      const edges = page.map((node) => ({ cursor: encodeCursor(node), node }));
      return {
        edges,
        pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null },
      };
    },
  }),
);
