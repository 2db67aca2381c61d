import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Api } from "./api.ts";
import { byId, h, short, time } from "./dom.ts";

const statuses = ["PENDING", "CONFIRMED", "FULFILLING", "COMPLETED", "CANCELLED"] as const;
type Status = (typeof statuses)[number];

export interface StateChange {
  eventId: string;
  orderId: string;
  from: Status | null;
  to: Status;
  occurredAt: string;
}

const windowSeconds = 300;
const shownChanges = 50;

/** Orders by state, the chart of placed and completed per second, and the changes as they come. */
export class Flow {
  private counts = new Map<Status, number>();
  /** Unix seconds → [placed, completed], over the chart's window. */
  private perSecond = new Map<number, [number, number]>();
  /** Live changes before this instant are in the seeded counts already. */
  private seededUntil = 0;
  private chart?: uPlot;
  private timers: number[] = [];

  constructor(
    private readonly api: Api,
    private readonly onPick: (orderId: string) => void,
  ) {}

  async start(): Promise<void> {
    await Promise.all([this.readCounts(), this.seedChart()]);
    this.timers.push(window.setInterval(() => void this.readCounts().catch(report), 15_000));
    this.timers.push(window.setInterval(() => this.drawChart(), 1000));
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.chart?.destroy();
    byId("changes").replaceChildren();
  }

  /** A change from the subscription: the list, the counts and the chart follow it at once. */
  heard(change: StateChange): void {
    if (change.from) this.counts.set(change.from, Math.max(0, (this.counts.get(change.from) ?? 0) - 1));
    this.counts.set(change.to, (this.counts.get(change.to) ?? 0) + 1);
    this.drawCounts();
    const at = Date.parse(change.occurredAt);
    if (at >= this.seededUntil && (change.from === null || change.to === "COMPLETED")) {
      const second = Math.floor(at / 1000);
      const [placed, completed] = this.perSecond.get(second) ?? [0, 0];
      this.perSecond.set(second, change.from === null ? [placed + 1, completed] : [placed, completed + 1]);
    }
    const list = byId("changes");
    const pick = h("button", { type: "button", class: "link", title: change.orderId }, short(change.orderId));
    pick.addEventListener("click", () => this.onPick(change.orderId));
    list.prepend(
      h(
        "li",
        { "data-order": change.orderId, "data-to": change.to },
        h("time", {}, time(change.occurredAt)),
        " ",
        pick,
        " ",
        h("span", { class: `status ${(change.from ?? "").toLowerCase()}` }, change.from ?? "—"),
        " → ",
        h("span", { class: `status ${change.to.toLowerCase()}` }, change.to),
      ),
    );
    while (list.children.length > shownChanges) list.lastElementChild?.remove();
  }

  private async readCounts(): Promise<void> {
    const { orderCounts } = await this.api.query<{ orderCounts: { status: Status; count: number }[] }>(
      "{ orderCounts { status count } }",
    );
    this.counts = new Map(orderCounts.map((c) => [c.status, c.count]));
    this.drawCounts();
  }

  private drawCounts(): void {
    byId("counts").replaceChildren(
      ...statuses.map((status) =>
        h(
          "div",
          { class: `tile ${status.toLowerCase()}`, "data-status": status },
          h("span", { class: "label" }, status),
          h("span", { class: "value" }, this.counts.get(status) ?? 0),
        ),
      ),
    );
  }

  private async seedChart(): Promise<void> {
    const { ordersPerSecond } = await this.api.query<{
      ordersPerSecond: { at: string; placed: number; completed: number }[];
    }>(`{ ordersPerSecond(seconds: ${windowSeconds}) { at placed completed } }`);
    this.seededUntil = Date.now();
    for (const s of ordersPerSecond) this.perSecond.set(Date.parse(s.at) / 1000, [s.placed, s.completed]);
    const element = byId("chart");
    this.chart = new uPlot(
      {
        width: Math.max(320, element.clientWidth || 560),
        height: 220,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        series: [
          {},
          { label: "placed /s", stroke: "#2563eb", width: 2 },
          { label: "completed /s", stroke: "#16a34a", width: 2 },
        ],
        axes: [
          {
            values: (_u, ticks) =>
              ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false })),
          },
          { label: "orders" },
        ],
      },
      this.series(),
      element,
    );
  }

  private series(): uPlot.AlignedData {
    const now = Math.floor(Date.now() / 1000);
    const xs: number[] = [];
    const placed: number[] = [];
    const completed: number[] = [];
    for (let t = now - windowSeconds + 1; t <= now; t++) {
      const [p, c] = this.perSecond.get(t) ?? [0, 0];
      xs.push(t);
      placed.push(p);
      completed.push(c);
    }
    for (const t of this.perSecond.keys()) if (t <= now - windowSeconds) this.perSecond.delete(t);
    return [xs, placed, completed];
  }

  private drawChart(): void {
    this.chart?.setData(this.series());
  }
}

/** A background refresh that failed: shown in the header, and logged in the browser's console. */
export function report(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  byId("notice").textContent = `Could not refresh: ${message}`;
  console.error("console:", message);
}
