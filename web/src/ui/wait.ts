// Waiting that stops when the screen goes away.

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Calls `f` until it succeeds, waiting 0.5 s, 1 s, 2 s ... 5 s between tries. */
export async function retrying<T>(f: () => Promise<T>, signal: AbortSignal, onFailure: (err: unknown) => boolean): Promise<T | undefined> {
  for (let delay = 500; !signal.aborted; delay = Math.min(delay * 2, 5000)) {
    try {
      return await f();
    } catch (err) {
      if (signal.aborted || !onFailure(err)) return undefined;
    }
    await sleep(delay, signal);
  }
  return undefined;
}
