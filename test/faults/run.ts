// `make faults`: the fault-injection suite in full (FAULTS faults, OUTAGE_SECONDS-long store outages), its
// table printed for the README. Exit 1 when a row was lost or doubled, the archive failed to verify, or a
// secret reached a log.

import { faultTable, runFaultSuite } from './suite.js';

const faults = Number(process.env.FAULTS ?? 54);
const outageSeconds = Number(process.env.OUTAGE_SECONDS ?? 60);
const rate = Number(process.env.RATE ?? 100);
console.log(`fault suite: ${faults} faults, store outages of ${outageSeconds} s, ${rate} changes/s`);
const report = await runFaultSuite({
  faults,
  outageSeconds,
  rate,
  log: (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
  trace: process.env.TRACE
    ? (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`)
    : undefined,
});
console.log(`\n${faultTable(report)}`);
console.log(`${report.seconds.toFixed(0)} s in all`);
for (const p of report.archiveProblems) console.log(`archive problem: ${p}`);
for (const s of report.secretsInLogs) console.log(`secret found in ${s}`);
const ok =
  report.rowsLost === 0 &&
  report.duplicateRows === 0 &&
  report.archiveProblems.length === 0 &&
  report.secretsInLogs.length === 0;
console.log(ok ? 'PASS' : 'FAIL');
process.exit(ok ? 0 : 1);
