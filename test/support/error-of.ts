// Runs a function that must throw a TidemarkError, and returns that error for the test to inspect.

import { TidemarkError } from '../../services/core/errors.js';

export function errorOf(fn: () => unknown): TidemarkError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TidemarkError) return err;
    throw err;
  }
  throw new Error('expected a TidemarkError');
}

/** The TidemarkError a promise rejects with. */
export async function rejectionOf(promise: Promise<unknown>): Promise<TidemarkError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TidemarkError) return err;
    throw err;
  }
  throw new Error('expected a TidemarkError');
}
