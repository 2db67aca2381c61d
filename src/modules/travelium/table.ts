import { text } from "drizzle-orm/pg-core";
import { moduleStateTable } from "../../statemachine/module-table.ts";

export const bookingStates = ["pending", "reserved", "confirmed", "travelled", "cancelled"] as const;
export type BookingState = (typeof bookingStates)[number];

export const traveliumBookings = moduleStateTable("travelium_bookings", bookingStates, {
  /** The allotment reservation held for the order's travel lines. */
  allotmentReference: text("allotment_reference").notNull(),
});
