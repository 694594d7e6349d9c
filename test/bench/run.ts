// `make bench`: runs each benchmark under test/bench/<name>/index.ts in its own process (so peak memory is
// its own), or only those named on the command line (make bench BENCH=capture).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here, { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && existsSync(join(here, entry.name, 'index.ts')))
  .map((entry) => entry.name)
  .sort();

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ') || 'none yet'}`,
  );
  process.exit(2);
}

const selected = wanted.length > 0 ? wanted : available;
if (selected.length === 0) {
  console.log('no benchmarks under test/bench/ yet');
}
let failed = 0;
for (const name of selected) {
  console.log(`\n=== bench: ${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, name, 'index.ts')], {
    stdio: 'inherit',
  });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
