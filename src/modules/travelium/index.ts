import { defineModule, type ModuleHandler } from "../../statemachine/module.ts";
import { createModuleRow, moveModuleRow, readModuleRow } from "../../statemachine/module-rows.ts";
import { progressTransitions, reportedState } from "../progress.ts";
import { type BookingState, bookingStates, traveliumBookings } from "./table.ts";

const reserveAllotment: ModuleHandler<BookingState> = async (ctx) => {
  const lines = (ctx.event.payload.lines ?? []) as { kind: string }[];
  if (!lines.some((l) => l.kind === "travel")) return;
  await createModuleRow(ctx, { allotmentReference: `ALLOT-${ctx.event.orderId.slice(0, 8).toUpperCase()}` });
};

const applyReport: ModuleHandler<BookingState> = async (ctx) => {
  if (!(await readModuleRow(ctx.tx, ctx.module, ctx.event.orderId)))
    throw new Error("no booking yet for this order");
  await moveModuleRow(ctx, reportedState(ctx.event, bookingStates));
};

const cancelBooking: ModuleHandler<BookingState> = async (ctx) => {
  await moveModuleRow(ctx, "cancelled");
};

export const travelium = defineModule({
  name: "travelium",
  entity: "Booking",
  table: traveliumBookings,
  initial: "reserved",
  states: bookingStates,
  transitions: progressTransitions(["pending", "reserved", "confirmed", "travelled"], "cancelled"),
  terminalHappy: "travelled",
  // The travel partner cancelling a booking cancels the whole order.
  vetoes: ["cancelled"],
  involvedIn: (order) => order.lines.some((l) => l.kind === "travel"),
  graphql: { typeName: "TraveliumState", stateEnum: "BookingState", stateField: "bookingState" },
  report: {
    mutation: "reportBooking",
    input: "ReportBookingInput",
    scope: "travelium",
    event: "BookingReported",
  },
  on: { OrderConfirmed: reserveAllotment, BookingReported: applyReport },
  onCancel: cancelBooking,
});
