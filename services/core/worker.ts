// Worker threads from the module that starts them: the sibling `.js` file when running compiled, the `.ts`
// one with its loader registered first when running from TypeScript sources (tests, tsx).

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * Starts `<name>.js` (or `<name>.ts`) next to the module whose `import.meta.url` is `from`.
 */
export function startWorker(
  from: string,
  name: string,
  workerData: unknown,
  resourceLimits?: ResourceLimits,
): Worker {
  const fromSource = from.endsWith('.ts');
  const file = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, from);
  const options = { workerData, ...(resourceLimits ? { resourceLimits } : {}) };
  if (!fromSource) return new Worker(file, options);
  // The package's ESM entry: its CommonJS one registers the loader by a path that does not exist.
  const tsx = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}
