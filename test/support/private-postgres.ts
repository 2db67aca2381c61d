import { execFileSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.env.TEST_POSTGRES_BIN ?? "/usr/lib/postgresql/15/bin";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL binary as the postgres user (it refuses to run as root). */
function asPostgres(program: string, args: string[]): void {
  const command = [join(bin, program), ...args];
  if (process.getuid?.() === 0)
    execFileSync("runuser", ["-u", "postgres", "--", ...command], { stdio: "pipe" });
  else execFileSync(command[0]!, command.slice(1), { stdio: "pipe" });
}

/**
 * A PostgreSQL cluster of a test's own, on a free port, that the test may
 * stop and restart (never the machine's shared one). Trust authentication.
 */
export async function startPrivatePostgres() {
  const dir = mkdtempSync(join(tmpdir(), "pg-private-"));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const port = await freePort();
  asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  const pgCtl = (...args: string[]) =>
    asPostgres("pg_ctl", [
      "-D",
      data,
      "-w",
      "-l",
      join(dir, "log"),
      "-o",
      `-p ${port} -k ${dir} -h 127.0.0.1`,
      ...args,
    ]);
  pgCtl("start");
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    /** Stops it fast (every connection dropped), waits `downMs`, starts it again. */
    async restart(downMs = 0): Promise<void> {
      pgCtl("stop", "-m", "fast");
      await new Promise((resolve) => setTimeout(resolve, downMs));
      pgCtl("start");
    },
    async stop(): Promise<void> {
      try {
        pgCtl("stop", "-m", "immediate");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
