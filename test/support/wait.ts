/** Polls `probe` until it returns a value (not undefined), or fails after `ms`. */
export async function until<T>(
  probe: () => Promise<T | undefined>,
  ms: number,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until it holds, or fails after `ms`. */
export const eventually = (predicate: () => boolean | Promise<boolean>, ms: number, what = 'condition') =>
  until(async () => ((await predicate()) ? true : undefined), ms, what);
