// Every table, for drizzle's typed queries and for drizzle-kit. Each lives beside the code that owns it.

export * from "../modules/finance/table.ts";
export * from "../modules/logistics/table.ts";
export * from "../modules/notifier/table.ts";
export * from "../modules/subscription/table.ts";
export * from "../modules/travelium/table.ts";
export * from "../relay/tables.ts";
export * from "../statemachine/catalog.ts";
export * from "../statemachine/tables.ts";
