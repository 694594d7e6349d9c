// How a benchmark run ends: each target it aims for, met or not, then the steps that failed (which make
// the run exit with 1).

/** A figure a benchmark aims for, and whether this run reached it. */
export interface Target {
  what: string;
  met: boolean;
  detail: string;
}

export function printTargets(targets: Target[]): void {
  console.log('\nTargets');
  for (const t of targets) console.log(`  ${t.met ? 'met      ' : 'NOT MET  '} ${t.what}: ${t.detail}`);
}

/** Prints the first line of each failure, and makes the run exit with 1 when there is any. */
export function printFailures(failures: string[]): void {
  if (failures.length === 0) return;
  console.log(`\n${failures.length} step(s) failed:`);
  for (const f of failures) console.log(`  - ${f.split('\n')[0]}`);
  process.exitCode = 1;
}

/** What a failure says, whatever was thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
}
