/**
 * An email as a `.eml` file, written atomically: a temp file, flushed, then
 * renamed over the name, so a reader (or a restart) never sees half a
 * message. The folder is made when it is missing (first email, or someone
 * removed it). Two forms: the synchronous one for a rendering thread, where
 * blocking costs the event loop nothing and saves it five thread-pool hops
 * per email; the asynchronous one for rendering on the event loop.
 */
import { randomUUID } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

const tempFor = (path: string) => `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
const missingFolder = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT";

export function writeEmlFileSync(path: string, content: Uint8Array): void {
  const temp = tempFor(path);
  try {
    let fd: number;
    try {
      fd = openSync(temp, "w");
    } catch (error) {
      if (!missingFolder(error)) throw error;
      mkdirSync(dirname(path), { recursive: true });
      fd = openSync(temp, "w");
    }
    try {
      for (let written = 0; written < content.byteLength; )
        written += writeSync(fd, content, written, content.byteLength - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

export async function writeEmlFile(path: string, content: Uint8Array): Promise<void> {
  const temp = tempFor(path);
  try {
    const file = await open(temp, "w").catch(async (error: unknown) => {
      if (!missingFolder(error)) throw error;
      await mkdir(dirname(path), { recursive: true });
      return open(temp, "w");
    });
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
