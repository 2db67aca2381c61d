import { describe, expect, it } from "vitest";
import { readConfig } from "../src/config.ts";

describe("the cluster and retention settings", () => {
  it("reads a cluster's servers from NATS_URL and the stream's replicas and limits", () => {
    const config = readConfig({
      NATS_URL: "nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222",
      NATS_REPLICAS: "3",
      NATS_MAX_AGE_HOURS: "24",
      NATS_MAX_BYTES: "1000000",
    });
    expect(config.natsUrl).toEqual(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "nats://10.0.0.3:4222"]);
    expect(config.natsReplicas).toBe(3);
    expect(config.natsMaxAgeMs).toBe(24 * 3_600_000);
    expect(config.natsMaxBytes).toBe(1_000_000);
  });

  it("defaults to one replica, seven days on the stream, fourteen in the inbox, a sweep an hour", () => {
    const config = readConfig({});
    expect(config.natsUrl).toBeUndefined();
    expect(config.natsReplicas).toBe(1);
    expect(config.natsMaxAgeMs).toBe(168 * 3_600_000);
    expect(config.natsMaxBytes).toBeUndefined();
    expect(config.inboxRetentionMs).toBe(336 * 3_600_000);
    expect(config.retentionSweepMs).toBe(3_600_000);
  });

  it("refuses an inbox kept shorter than the stream, which would let a redelivery apply twice", () => {
    expect(() => readConfig({ NATS_MAX_AGE_HOURS: "200", INBOX_RETENTION_HOURS: "100" })).toThrow(
      /INBOX_RETENTION_HOURS \(100\) must be at least NATS_MAX_AGE_HOURS \(200\)/,
    );
    expect(() => readConfig({ NATS_REPLICAS: "0" })).toThrow(/NATS_REPLICAS/);
    expect(() => readConfig({ NATS_MAX_BYTES: "lots" })).toThrow(/NATS_MAX_BYTES/);
  });
});
