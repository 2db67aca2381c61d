import type { SQL } from "drizzle-orm";
import type { AnyPgColumn, PgTable } from "drizzle-orm/pg-core";
import type { ProductKind } from "./catalog.ts";
import type { EventOf, EventType } from "./events.ts";
import type { PartnerScope } from "./partners.ts";

export interface OrderFacts {
  orderId: string;
  lines: { sku: string; kind: ProductKind; quantity: number }[];
}

/** The columns every order_module_state table has (see moduleStateTable); modules add their own. */
export type ModuleTable = PgTable & {
  orderId: AnyPgColumn;
  state: AnyPgColumn;
  version: AnyPgColumn;
  updatedAt: AnyPgColumn;
};

/** A module's row for one order, as its decisions see it. */
export interface ModuleRowState<S extends string> {
  state: S;
}

/** What a module knows about one order when an event comes: its row (none yet: undefined) and its notes. */
export interface ModuleState<S extends string> {
  row: ModuleRowState<S> | undefined;
  /** Facts heard before the row existed: "cancelled", or e.g. "invoice-paid". */
  notes: ReadonlySet<string>;
}

/** What a module's decision asks for; the shared executor (module-rows.ts) applies it in the listener's transaction. */
export type ModuleAction<S extends string, Columns = Record<string, unknown>> =
  /** Create the row in `state` with these columns, and emit the state's event. `numbered`: take the module's next number (`numbering`). */
  | { kind: "create"; state: S; columns: Columns; numbered?: boolean }
  /** Move the row to `to` (only from a state its transitions allow), and emit the state's event. */
  | { kind: "move"; to: S }
  /** Remember a fact about the order until the row exists. */
  | { kind: "note"; note: string }
  /** Not yet: fail, so the bus brings the event again later. */
  | { kind: "retry"; reason: string };

// Method syntax makes the parameters bivariant, so a module typed with its own states fits the module list.
export type ModuleDecider<E, S extends string, Columns> = {
  decide(event: E, state: ModuleState<S>): ModuleAction<S, Columns>[];
}["decide"];

/** A module's decision on events of type E, for a module with states S and table T. */
export type DecideOn<
  E extends EventType,
  S extends string,
  T extends ModuleTable = ModuleTable,
> = ModuleDecider<EventOf<E>, S, Partial<T["$inferInsert"]>>;

export type CancelDecider<S extends string> = {
  decide(row: ModuleRowState<S>): ModuleAction<S, never>[];
}["decide"];

/**
 * One module of the saga, in the seed's five rules: it listens to the bus
 * (`on`), keeps its own row (`table`, `states`), registers with the
 * completion aggregate (`terminalHappy`), handles cancel (`onCancel`, not
 * optional) and is idempotent (the listener runner's inbox, keyed by event id).
 */
export interface ModuleDefinition<S extends string = string, T extends ModuleTable = ModuleTable> {
  /** Also the name in MODULES_REQUIRED_FOR_COMPLETION and the durable consumer's name. */
  name: string;
  table: T;
  states: readonly S[];
  /** The event its row emits on entering each state, e.g. issued: "InvoiceIssued". */
  events: Record<S, string>;
  /** The state its row is created in as a rule (a decision may create it in another); the diagram starts here. */
  initial: S;
  /** The sub-state machine: for each state, the states it may move to. */
  transitions: Partial<Record<S, readonly S[]>>;
  /** The state in which the module is done and the order may complete. */
  terminalHappy: S;
  /** Whether an order involves this module; decided once, at placement. */
  involvedIn(order: OrderFacts): boolean;
  /** States of this module that move a confirmed order to fulfilling. */
  startsFulfilment?: readonly S[];
  /** States that veto the order (it is cancelled) when the module reaches them on its own. */
  vetoes?: readonly S[];
  /** Its part of the GraphQL schema: a ModuleState type whose sub-state is an enum of `states`. */
  graphql: {
    /** e.g. FinanceState */
    typeName: string;
    /** e.g. InvoiceState */
    stateEnum: string;
    /** e.g. invoiceState */
    stateField: string;
    /** Nullable text columns of the row to expose too: GraphQL field name → column property. */
    strings?: Record<string, string>;
  };
  /**
   * A partner's progress report: a mutation that checks the caller's scope,
   * enqueues `event` with the reported state, and leaves the work to this
   * module's listener.
   */
  report?: {
    /** e.g. reportShipment */
    mutation: string;
    /** e.g. ReportShipmentInput */
    input: string;
    /** The partner scope that may call it. */
    scope: PartnerScope;
    /** e.g. ShipmentReported */
    event: EventType;
  };
  /** Its decisions, by event type: pure, they return what to do and the executor does it. */
  on: { [E in EventType]?: ModuleDecider<EventOf<E>, S, Partial<T["$inferInsert"]>> };
  /** Rule 4: roll back this module's part of a cancelled order, given its row. Called at most once per order. */
  onCancel: CancelDecider<S>;
  /**
   * A gap-free number some created rows take (`numbered: true`), in the
   * listener's transaction, so its rollback gives the number back. `take`
   * answers, for a batch's `count` numbered rows, SQL for the rows' insert:
   * `numbers`, a query that takes the next `count` numbers at once (the WITH
   * clause of that name), and the `i`-th of them (from 0, in stream order)
   * read from it: the numbers cost the insert no statement of their own.
   */
  numbering?: { column: string; take(count: number): { numbers: SQL; nth(i: number): SQL } };
  /** What the event of a row created in a state carries besides the state, read from the row as written. */
  announce?: { [K in S]?: AnnounceRow<T> };
}

type AnnounceRow<T extends ModuleTable> = {
  announce(row: T["$inferSelect"]): Record<string, unknown>;
}["announce"];

export function defineModule<const S extends string, T extends ModuleTable>(
  definition: ModuleDefinition<S, T>,
): ModuleDefinition<S, T> {
  for (const [from, tos] of Object.entries(definition.transitions) as [S, readonly S[]][]) {
    for (const to of [from, ...tos]) {
      if (!definition.states.includes(to))
        throw new Error(`module ${definition.name}: unknown state "${to}"`);
    }
  }
  for (const state of definition.states) {
    if (!definition.events[state]) throw new Error(`module ${definition.name}: no event for "${state}"`);
  }
  if (!definition.states.includes(definition.terminalHappy)) {
    throw new Error(
      `module ${definition.name}: terminalHappy "${definition.terminalHappy}" is not one of its states`,
    );
  }
  return definition;
}

/** The states a module row may move to `to` from: the guard of its UPDATE. */
export function moduleStatesBefore<S extends string>(
  module: Pick<ModuleDefinition<S>, "transitions">,
  to: S,
): S[] {
  return (Object.entries(module.transitions) as [S, readonly S[]][])
    .filter(([, tos]) => tos.includes(to))
    .map(([from]) => from);
}
