// What the console's screens share: a call's outcome in words, ends the session when
// the token is no longer accepted.

import { explain } from "../../api/errors";

export type Outcome<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Runs `f`; a refusal becomes words (and an ended session signs out). */
export async function attempt<T>(f: () => Promise<T>, onSignedOut: (why: string) => void): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (err) {
    const p = explain(err, "load");
    if (p.signedOut) onSignedOut(p.text);
    return { ok: false, problem: p.text };
  }
}

/** A time to the second, in the reader's zone: "Tue 8 Dec 2026, 03:40:12". */
export function stamp(d: Date | null): string {
  if (!d) return "—";
  return d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function signed(n: bigint): string {
  return n > 0n ? `+${n}` : String(n);
}
