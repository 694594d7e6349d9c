// The fault-injection suite at a reduced count (one fault of each kind, short store outages), as `make test`
// runs it; `make faults` runs the full suite. Nothing may be lost or doubled, the archive must verify after
// every fault, and no configured secret may reach any log line of the suite's daemons.

import { appendFileSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, faultTable, runFaultSuite } from '../faults/suite.js';

describe('fault-injection suite (reduced)', () => {
  it('loses and doubles nothing through one fault of each kind under a live chat workload', async () => {
    mkdirSync('.tidemark', { recursive: true });
    const report = await runFaultSuite({
      faults: FAULT_KINDS.length,
      outageSeconds: Number(process.env.TIDEMARK_OUTAGE_SECONDS ?? 10),
      rate: 60,
      log: (line) => console.log(line),
      // Every phase, for following the run: tail -f .tidemark/faults.log
      trace: (line) => appendFileSync('.tidemark/faults.log', `${new Date().toISOString()} ${line}\n`),
    });
    console.log(faultTable(report));
    expect(report.rows.map((r) => r.injected)).toEqual(FAULT_KINDS.map(() => 1));
    expect(report.rowsWritten).toBeGreaterThan(100);
    expect(report.restoresChecked).toBe(FAULT_KINDS.length + 1);
    expect(report.rowsLost).toBe(0);
    expect(report.duplicateRows).toBe(0);
    expect(report.archiveProblems).toEqual([]);
    expect(report.secretsInLogs).toEqual([]);
  }, 1_800_000);
});
