/**
 * Fault injection, for the fault suite only (test/faults): with
 * `FAULT_INJECT=<point>` (or `<point>@<n>`: the n-th time it is reached) this
 * process kills itself with SIGKILL at that point, as a crash or `kill -9`
 * would, so the suite can stop a process at the exact moment a window is open
 * (say between publishing and marking). Unset, which it always is in
 * production, a point costs one comparison. Points: relay:before-publish,
 * relay:after-publish, relay:after-mark, listener:mid-batch, notifier:mid-send.
 */
const [armed, nth] = (process.env.FAULT_INJECT ?? "").split("@");
let reached = 0;

export function faultPoint(name: string): void {
  if (armed !== name) return;
  if (++reached < Number(nth ?? 1)) return;
  process.stderr.write(`fault injected: ${name}, killing process ${process.pid}\n`);
  process.kill(process.pid, "SIGKILL");
}
