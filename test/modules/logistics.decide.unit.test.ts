import { describe, it } from "vitest";
import { logistics } from "../../src/modules/logistics/index.ts";
import { decider, orderCancelled, orderConfirmed, shipmentReported } from "../support/decider.ts";

const given = decider(logistics).given;

describe("Logistics decides", () => {
  it("creates a pick list of the physical lines on the first event, and nothing without any", () => {
    given()
      .when(orderConfirmed("physical", "digital"))
      .then([
        { kind: "create", state: "waiting", columns: { pickList: [{ sku: "PHYSICAL-0", quantity: 1 }] } },
      ]);
    given().when(orderConfirmed("digital")).then([]);
  });

  it("applies a report that skips ahead, and ignores one that comes late or again", () => {
    given({ row: "waiting" })
      .when(shipmentReported("delivered"))
      .then([{ kind: "move", to: "delivered" }]);
    given({ row: "delivered" }).when(shipmentReported("shipped")).then([]);
    given({ row: "packed" }).when(shipmentReported("packed")).then([]);
  });

  it("has a report that comes before the pick list tried again later", () => {
    given()
      .when(shipmentReported("picked"))
      .then([{ kind: "retry", reason: "no shipment yet for this order" }]);
  });

  it("refuses a report of a state it does not have", () => {
    given({ row: "waiting" })
      .when(shipmentReported("lost"))
      .thenFails(/unknown state: lost/);
  });

  it("puts a parcel not yet shipped back on the shelf on cancel, and leaves one on its way", () => {
    given({ row: "packed" })
      .when(orderCancelled())
      .then([{ kind: "move", to: "returned" }]);
    given({ row: "shipped" }).when(orderCancelled()).then([]);
  });

  it("returns the pick list at once when the cancel came before it", () => {
    given()
      .when(orderCancelled())
      .then([{ kind: "note", note: "cancelled" }]);
    given({ notes: ["cancelled"] })
      .when(orderConfirmed("physical"))
      .then([
        { kind: "create", state: "waiting", columns: { pickList: [{ sku: "PHYSICAL-0", quantity: 1 }] } },
        { kind: "move", to: "returned" },
      ]);
  });
});
