import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BusLogger } from "./connection.ts";

const restartDelayMs = 1_000;

/**
 * How long each pull request lives (the client's default is 30 s). The
 * server sends heartbeats at half of it, and the client re-pulls after two
 * are missed: when a node of a cluster dies with the consumer's leader on
 * it, the pull it held is noticed gone within seconds rather than a minute;
 * after a NATS restart the client asks again within seconds rather than
 * half a minute (the fault suite found both). Idle, it costs a request every
 * few seconds per consumer.
 */
export const pullExpiresMs = 5_000;

export interface FeedHooks {
  open(): Promise<ConsumerMessages>;
  each(msg: JsMsg, stopping: boolean): Promise<void> | void;
  /** Notifications after which this consumer will never deliver again. */
  gone?(type: string): boolean;
}

/**
 * Iterates a consumer until stopped. The iterator can end without being asked
 * (connection closed and reopened, consumer deleted): it is then opened again.
 */
export class Feed {
  private stopping = false;
  private current?: ConsumerMessages;
  private wake?: () => void;
  private readonly done: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: BusLogger,
    private readonly what: object,
    private readonly hooks: FeedHooks,
  ) {
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopping = true;
    this.current?.stop();
    this.wake?.();
    return this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        const messages = await this.hooks.open();
        this.current = messages;
        if (this.stopping) messages.stop();
        this.watch(messages).catch(() => {});
        // stop() lets the messages already buffered come through first; each() is told to skip them.
        for await (const msg of messages) await this.hooks.each(msg, this.stopping);
      } catch (err) {
        this.log.warn({ err, ...this.what }, "bus: consumer failed");
      }
      if (this.stopping || this.nc.isClosed()) return;
      this.log.warn(this.what, "bus: consumer ended, opening it again");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, restartDelayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const note of messages.status()) {
      if (this.hooks.gone?.(note.type)) {
        this.log.warn({ ...this.what, note }, "bus: consumer is gone");
        messages.stop();
      }
    }
  }
}
