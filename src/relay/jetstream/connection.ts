import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Topology } from "./topology.ts";

export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const quiet: BusLogger = { info() {}, warn() {}, error() {} };

export interface Clients {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** What every job of the bus works with. */
export interface BusParts {
  connection: Connection;
  topology: Topology;
  log: BusLogger;
}

const pingTimeoutMs = 2_000;

/** The bus's one NATS connection: opened once, watched, drained on close. */
export class Connection {
  private clientsOpen?: Clients;
  private opening?: Promise<void>;
  private closing?: Promise<void>;

  constructor(
    private readonly url: string | string[],
    private readonly name: string,
    private readonly log: BusLogger,
  ) {}

  async open(): Promise<void> {
    if (this.closing) throw new Error("bus closed");
    // One connection per bus, even when open() is called again or twice at once.
    this.opening ??= this.connect().catch((err) => {
      this.opening = undefined;
      throw err;
    });
    await this.opening;
  }

  /** The clients, once open and until closed; every job asks here so it fails plainly when they are not. */
  clients(): Clients {
    if (this.closing) throw new Error("bus closed");
    if (!this.clientsOpen) throw new Error("bus not started");
    if (this.clientsOpen.nc.isClosed()) throw new Error("NATS connection closed");
    return this.clientsOpen;
  }

  async ping(): Promise<void> {
    const { jsm } = this.clients();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("JetStream did not answer")), pingTimeoutMs);
    });
    try {
      await Promise.race([jsm.getAccountInfo(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Refuses new work at once, runs `first` (stopping the consumers), then drains. Idempotent. */
  close(first: () => Promise<unknown>): Promise<void> {
    this.closing ??= (async () => {
      await first();
      const nc = this.clientsOpen?.nc;
      if (nc && !nc.isClosed()) await nc.drain();
    })();
    return this.closing;
  }

  /** Sends what is buffered (the naks of a hand-back), waiting at most a ping's time, then closes. */
  async abandon(): Promise<void> {
    const nc = this.clientsOpen?.nc;
    if (!nc || nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("NATS did not answer the hand-back")), pingTimeoutMs);
    });
    try {
      await Promise.race([nc.flush(), timeout]);
    } finally {
      clearTimeout(timer);
      await nc.close().catch(() => {});
    }
  }

  private async connect(): Promise<void> {
    // noAsyncTraces: no stack captured up front for every request (each publish and pull is one) in case it
    // times out; errors still say what failed. nats.js documents it as a large gain for JetStream publishers.
    const nc = await connect({
      servers: this.url,
      name: this.name,
      maxReconnectAttempts: -1,
      noAsyncTraces: true,
    });
    let jsm: JetStreamManager;
    try {
      // Fails when JetStream is not enabled for the account.
      jsm = await jetstreamManager(nc);
    } catch (err) {
      await nc.close();
      throw err;
    }
    this.clientsOpen = { nc, js: jetstream(nc), jsm };
    this.watch(nc).catch(() => {});
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") this.log.warn({ status }, "bus: disconnected from NATS");
      else if (status.type === "reconnect") this.log.info({ status }, "bus: reconnected to NATS");
      else if (status.type === "error") this.log.error({ status }, "bus: NATS error");
    }
  }
}
