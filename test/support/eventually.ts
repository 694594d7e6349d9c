// Waiting for something another process does: poll until the probe gives a value, or fail saying what
// never happened and the probe's last error.

export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
  /** An error that waiting cannot cure ends the wait at once. */
  fatal?: (err: unknown) => boolean,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (fatal?.(err)) throw new Error(`${what} cannot happen: ${String(err)}`, { cause: err });
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not happen within ${timeoutMs} ms; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
