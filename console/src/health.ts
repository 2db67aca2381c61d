import type { Api } from "./api.ts";
import { byId, fillTable, h, short, time } from "./dom.ts";
import { report } from "./flow.ts";

interface Health {
  pipelineHealth: {
    outboxWaiting: number;
    outboxLagSeconds: number;
    deadLettersWaiting: number;
    parkedEvents: number;
    stuckAfterSeconds: number;
    stuckOrderCount: number;
    consumers: { consumer: string; waiting: number; inFlight: number }[];
    stuckOrders: { unmovedSeconds: number; waitingFor: string[]; order: { id: string; status: string } }[];
  };
  deadLetters: {
    id: string;
    consumer: string;
    eventType: string;
    orderId: string;
    error: string;
    attempts: number;
    failedAt: string;
    replayedAt: string | null;
  }[];
  parkedEvents: { id: string; type: string; orderId: string; parkedAt: string; error: string }[];
}

const healthQuery = `{
  pipelineHealth {
    outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount
    consumers { consumer waiting inFlight }
    stuckOrders(first: 10) { unmovedSeconds waitingFor order { id status } }
  }
  deadLetters(first: 20) { id consumer eventType orderId error attempts failedAt replayedAt }
  parkedEvents(first: 20) { id type orderId parkedAt error }
}`;

const pollMs = 2000;

/** Outbox lag, consumer lag, dead letters (with Replay), parked events and stuck orders, every two seconds. */
export class PipelineHealth {
  private timer?: number;

  constructor(
    private readonly api: Api,
    private readonly onPick: (orderId: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = window.setInterval(() => void this.refresh().catch(report), pollMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const data = await this.api.query<Health>(healthQuery);
    const health = data.pipelineHealth;
    const figure = (name: string, label: string, value: string | number, alarm: boolean) =>
      h(
        "div",
        { class: `tile${alarm ? " alarm" : ""}`, "data-figure": name },
        h("span", { class: "label" }, label),
        h("span", { class: "value" }, value),
      );
    byId("figures").replaceChildren(
      figure(
        "outbox-lag",
        "outbox lag",
        `${health.outboxLagSeconds.toFixed(1)} s`,
        health.outboxLagSeconds > 5,
      ),
      figure("outbox-waiting", "unpublished events", health.outboxWaiting, false),
      figure("dead-letters", "dead letters", health.deadLettersWaiting, health.deadLettersWaiting > 0),
      figure("parked", "parked events", health.parkedEvents, health.parkedEvents > 0),
      figure(
        "stuck",
        `stuck > ${Math.round(health.stuckAfterSeconds)} s`,
        health.stuckOrderCount,
        health.stuckOrderCount > 0,
      ),
    );
    fillTable(
      byId<HTMLTableElement>("consumers"),
      ["consumer", "waiting (lag)", "in flight"],
      health.consumers.map((c) => [c.consumer, c.waiting, c.inFlight]),
      "no durable consumer",
    );
    fillTable(
      byId<HTMLTableElement>("stuck"),
      ["order", "state", "unmoved", "waits for"],
      health.stuckOrders.map((s) => [
        this.orderLink(s.order.id),
        s.order.status,
        `${Math.round(s.unmovedSeconds)} s`,
        s.waitingFor.join(", "),
      ]),
      "nothing stuck",
    );
    fillTable(
      byId<HTMLTableElement>("dead-letters"),
      ["#", "consumer", "event", "order", "error", "tries", "failed", ""],
      data.deadLetters.map((d) => [
        d.id,
        d.consumer,
        d.eventType,
        this.orderLink(d.orderId),
        h("span", { class: "error" }, d.error),
        d.attempts,
        time(d.failedAt),
        this.replayButton(d.id, d.replayedAt),
      ]),
      "no dead letter waiting",
    );
    fillTable(
      byId<HTMLTableElement>("parked"),
      ["event", "type", "order", "parked", "error"],
      data.parkedEvents.map((p) => [
        short(p.id),
        p.type,
        this.orderLink(p.orderId),
        time(p.parkedAt),
        h("span", { class: "error" }, p.error),
      ]),
      "no parked event",
    );
  }

  private orderLink(orderId: string): HTMLElement {
    const button = h("button", { type: "button", class: "link", title: orderId }, short(orderId));
    button.addEventListener("click", () => this.onPick(orderId));
    return button;
  }

  private replayButton(id: string, replayedAt: string | null): HTMLElement {
    const button = h(
      "button",
      { type: "button", class: "replay", "data-dead-letter": id },
      replayedAt ? "Replay again" : "Replay",
    );
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await this.api.query("mutation ($id: ID!) { replayDeadLetter(id: $id) { id replayedAt } }", { id });
        byId("notice").textContent = `Dead letter ${id} replayed.`;
        await this.refresh();
      } catch (error) {
        button.disabled = false;
        report(error);
      }
    });
    return button;
  }
}
