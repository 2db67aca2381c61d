import { type ResolveCursorConnectionArgs, resolveCursorConnection } from "@pothos/plugin-relay";
import { and, asc, desc, eq, gt, lt, or, type SQL } from "drizzle-orm";
import { refuse } from "../errors.ts";
import { type Actor, actorKinds, whoCaused } from "../statemachine/actors.ts";
import { explainCompletion, type ModuleCompletion } from "../statemachine/decide.ts";
import { nextStatuses, orderStatuses } from "../statemachine/states.ts";
import { type OrderRow, type orderLines, salesOrders } from "../statemachine/tables.ts";
import { callerOf, canSee, customerOrAdmin, signedIn } from "./auth.ts";
import type { Builder, Context } from "./builder.ts";
import { upperEnum } from "./enums.ts";
import type { addModuleStates } from "./module-state.ts";
import { moduleStatesOf } from "./module-state.ts";
import { type OrderEventRow, orderReads } from "./order-reads.ts";
import type { addProducts } from "./product.ts";

/** Per-order loads batch across a page; not cached, since a subscription's context outlives its events. */
const perRequest = { cache: false } as const;

export function addOrders(
  builder: Builder,
  {
    MoneyRef,
    ProductKindEnum,
    ModuleStateRef,
  }: ReturnType<typeof addProducts> & ReturnType<typeof addModuleStates>,
) {
  const OrderStatusEnum = builder.enumType("OrderStatus", {
    description: "The five domain-level order states shared by every module.",
    values: upperEnum(orderStatuses),
  });

  const OrderLineRef = builder.objectRef<typeof orderLines.$inferSelect>("OrderLine").implement({
    fields: (t) => ({
      sku: t.exposeString("sku"),
      name: t.exposeString("name"),
      kind: t.field({ type: ProductKindEnum, resolve: (l) => l.kind as never }),
      quantity: t.exposeInt("quantity"),
      unitPrice: t.field({
        type: MoneyRef,
        resolve: (l) => ({ amount: l.unitAmount, currency: l.currency }),
      }),
    }),
  });

  const ActorKindEnum = builder.enumType("ActorKind", {
    description: "Who caused an event. UNKNOWN: an event recorded before callers were (an older row).",
    values: upperEnum(actorKinds),
  });

  const EventActorRef = builder.objectRef<Actor>("EventActor").implement({
    description:
      "Who caused an event: the customer, a partner, an admin, or a module (orders: the completion aggregate).",
    fields: (t) => ({
      kind: t.field({ type: ActorKindEnum, resolve: (a) => a.kind }),
      id: t.exposeString("id", {
        description:
          "The customer's, partner's or admin's id (the token's subject), or the module's name; empty when unknown or not the caller's to read.",
      }),
    }),
  });

  const OrderEventRef = builder.objectRef<OrderEventRow>("OrderEvent").implement({
    description: "One entry of an order's timeline: an event from the order_events outbox.",
    fields: (t) => ({
      id: t.exposeID("id", { description: "The event id; also the idempotency key consumers use." }),
      type: t.exposeString("type", {
        description: "Event type, e.g. OrderPlaced, OrderConfirmed, InvoiceIssued, OrderStateChanged.",
      }),
      occurredAt: t.field({ type: "DateTime", resolve: (e) => e.occurredAt }),
      actor: t.field({
        type: EventActorRef,
        description:
          "Who caused it. An admin reads every id; others read a partner's or an admin's as empty.",
        resolve: (e, _args, ctx) => {
          const actor = whoCaused(e);
          const named = ctx.caller?.role === "admin" || actor.kind === "customer" || actor.kind === "module";
          return named ? actor : { ...actor, id: "" };
        },
      }),
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
      terminalHappy: t.exposeString("terminalHappy", {
        description: "The state in which the module is done.",
      }),
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

  const OrderRef = builder.objectRef<OrderRow>("Order").implement({
    fields: (t) => ({
      id: t.exposeID("id", { description: "UUID." }),
      status: t.field({ type: OrderStatusEnum, resolve: (o) => o.status }),
      customerId: t.exposeID("customerId"),
      contactEmail: t.exposeString("contactEmail"),
      lines: t.loadableGroup({
        type: OrderLineRef,
        loaderOptions: perRequest,
        load: (ids: string[], ctx) => orderReads(ctx.database.db, ctx.modules).lines.execute({ ids }),
        group: (line) => line.orderId,
        resolve: (o) => o.id,
      }),
      total: t.field({ type: MoneyRef, resolve: (o) => ({ amount: o.totalAmount, currency: o.currency }) }),
      modules: t.field({
        type: [ModuleStateRef],
        description: "Rows that modules have written for this order; a module that is not involved has none.",
        resolve: (o, _args, ctx) => moduleStatesOf(ctx).load(o),
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
          const rows = await moduleStatesOf(ctx).load(o);
          const modules = explainCompletion(o, new Map(rows.map((r) => [r.module, r.state])), ctx.modules);
          return { status: o.status, modules };
        },
      }),
      nextStatuses: t.field({
        type: [OrderStatusEnum],
        description: "The states the shared state machine allows next from this one.",
        resolve: (o) => nextStatuses(o.status),
      }),
      events: t.loadableGroup({
        type: OrderEventRef,
        description: "The order's events, oldest first.",
        loaderOptions: perRequest,
        load: (ids: string[], ctx) => orderReads(ctx.database.db, ctx.modules).events.execute({ ids }),
        group: (event) => event.orderId,
        resolve: (o) => o.id,
      }),
      cancellationReason: t.exposeString("cancellationReason", { nullable: true }),
      createdAt: t.field({ type: "DateTime", resolve: (o) => o.createdAt }),
      updatedAt: t.field({ type: "DateTime", resolve: (o) => o.updatedAt }),
    }),
  });

  builder.queryField("order", (t) =>
    t.field({
      type: OrderRef,
      nullable: true,
      description: "Null when the order does not exist or the caller may not see it.",
      authScopes: signedIn,
      args: { id: t.arg.id({ required: true }) },
      resolve: async (_root, { id }, ctx) => (await visibleOrder(ctx, id)) ?? null,
    }),
  );

  builder.queryField("orders", (t) =>
    t.connection(
      {
        type: OrderRef,
        description:
          "A customer sees their own orders; an admin sees all. Newest first; first defaults to 20, at most 100.",
        authScopes: customerOrAdmin,
        args: { status: t.arg({ type: OrderStatusEnum }) },
        resolve: async (_root, args, ctx) => {
          const caller = callerOf(ctx);
          for (const [name, size] of [
            ["first", args.first],
            ["last", args.last],
          ] as const)
            if (size != null && (size < 1 || size > 100))
              refuse("BAD_USER_INPUT", `${name} must be between 1 and 100`);
          const connection = await resolveCursorConnection(
            { args, toCursor: encodeCursor, defaultSize: 20, maxSize: 100 },
            async ({ before, after, limit, inverted }: ResolveCursorConnectionArgs): Promise<OrderRow[]> => {
              const conditions: SQL[] = [];
              if (caller.role === "customer") conditions.push(eq(salesOrders.customerId, caller.id));
              if (args.status) conditions.push(eq(salesOrders.status, args.status));
              if (after) conditions.push(beyond(decodeCursor(after, "after"), lt));
              if (before) conditions.push(beyond(decodeCursor(before, "before"), gt));
              const order = inverted ? asc : desc;
              return ctx.database.db
                .select()
                .from(salesOrders)
                .where(and(...conditions))
                .orderBy(order(salesOrders.createdAt), order(salesOrders.id))
                .limit(limit);
            },
          );
          // An empty page has no cursors (the helper would echo the client's).
          const [first, last] = [connection.edges.at(0), connection.edges.at(-1)];
          return {
            ...connection,
            pageInfo: {
              ...connection.pageInfo,
              startCursor: first?.cursor ?? null,
              endCursor: last?.cursor ?? null,
            },
          };
        },
      },
      { name: "OrderConnection" },
      { name: "OrderEdge" },
    ),
  );

  return { OrderRef, OrderStatusEnum };
}

/** The order if the caller may see it; undefined reads the same as "no such order". */
export async function visibleOrder(ctx: Context, id: string): Promise<OrderRow | undefined> {
  const caller = callerOf(ctx);
  if (!isUuid(id)) return undefined;
  const [order] = await orderReads(ctx.database.db, ctx.modules).order.execute({ id });
  return order && canSee(caller, order) ? order : undefined;
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}

/** Opaque to clients: the position of an order in "newest first". */
function encodeCursor(order: OrderRow): string {
  return Buffer.from(JSON.stringify([order.createdAt.toISOString(), order.id])).toString("base64url");
}

function decodeCursor(cursor: string, arg: "after" | "before"): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [string, string];
    const date = new Date(createdAt);
    if (Number.isNaN(date.getTime()) || !isUuid(id)) throw new Error("bad cursor");
    return { createdAt: date, id };
  } catch {
    return refuse("BAD_USER_INPUT", `${arg} is not a cursor this API gave out`);
  }
}

/** Orders past a cursor: older with `lt` (after it, newest first), newer with `gt` (before it). */
function beyond({ createdAt, id }: { createdAt: Date; id: string }, compare: typeof lt): SQL {
  return or(
    compare(salesOrders.createdAt, createdAt),
    and(eq(salesOrders.createdAt, createdAt), compare(salesOrders.id, id)),
  )!;
}
