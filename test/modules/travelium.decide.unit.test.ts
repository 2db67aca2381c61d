import { describe, expect, it } from "vitest";
import { travelium } from "../../src/modules/travelium/index.ts";
import { decideVeto } from "../../src/statemachine/decide.ts";
import { bookingReported, decider, orderCancelled, orderConfirmed, orderId } from "../support/decider.ts";

const given = decider(travelium).given;
const allotmentReference = `ALLOT-${orderId.slice(0, 8).toUpperCase()}`;

describe("Travelium decides", () => {
  it("reserves an allotment for an order with travel on the first event, and nothing without", () => {
    given()
      .when(orderConfirmed("travel"))
      .then([{ kind: "create", state: "reserved", columns: { allotmentReference } }]);
    given().when(orderConfirmed("physical")).then([]);
  });

  it("applies the partner's reports forward only, so late and repeated ones change nothing", () => {
    given({ row: "reserved" })
      .when(bookingReported("travelled"))
      .then([{ kind: "move", to: "travelled" }]);
    given({ row: "travelled" }).when(bookingReported("confirmed")).then([]);
    given({ row: "confirmed" }).when(bookingReported("confirmed")).then([]);
  });

  it("moves the booking to cancelled when the partner cancels it: the veto, which cancels the order", () => {
    given({ row: "confirmed" })
      .when(bookingReported("cancelled"))
      .then([{ kind: "move", to: "cancelled" }]);
    expect(decideVeto("fulfilling", travelium, "cancelled")).toBe("travelium vetoed the order (cancelled)");
    expect(decideVeto("cancelled", travelium, "cancelled")).toBeUndefined();
    expect(decideVeto("fulfilling", travelium, "confirmed")).toBeUndefined();
  });

  it("has a report that comes before the booking tried again later", () => {
    given()
      .when(bookingReported("confirmed"))
      .then([{ kind: "retry", reason: "no booking yet for this order" }]);
  });

  it("cancels the booking on cancel, and one reserved after the cancel at once", () => {
    given({ row: "reserved" })
      .when(orderCancelled())
      .then([{ kind: "move", to: "cancelled" }]);
    given({ row: "travelled" }).when(orderCancelled()).then([]);
    given({ notes: ["cancelled"] })
      .when(orderConfirmed("travel"))
      .then([
        { kind: "create", state: "reserved", columns: { allotmentReference } },
        { kind: "move", to: "cancelled" },
      ]);
  });
});
