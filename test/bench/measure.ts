// What every benchmark reports: throughput, CPU and peak memory, and its ratio to a baseline measured
// in the same run (absolute figures on a shared machine vary; ratios against a same-run baseline hold).

export interface Measurement {
  name: string;
  /** Units processed (rows, events, bytes…), named by `unit`. */
  count: number;
  unit: string;
  seconds: number;
  cpuSeconds: number;
  /** Peak resident memory of this process so far, in MiB. */
  peakRssMiB: number;
}

export async function measure(name: string, unit: string, work: () => Promise<number>): Promise<Measurement> {
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const count = await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    name,
    count,
    unit,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

/** measure(), with the peak RSS of this process during the step (not since start), sampled every 50 ms. */
export async function step(name: string, unit: string, work: () => Promise<number>): Promise<Measurement> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const m = await measure(name, unit, work);
    return { ...m, peakRssMiB: Math.max(peak, process.memoryUsage().rss) / 1024 / 1024 };
  } finally {
    clearInterval(sampler);
  }
}

export function rate(m: Measurement): number {
  return m.count / m.seconds;
}

/** Prints one table: each measurement's rate, and its ratio to the baseline when one is given. */
export function report(title: string, measurements: Measurement[], baseline?: Measurement): void {
  const rows = measurements.map((m) => ({
    benchmark: m.name,
    [`${m.unit}`]: m.count,
    seconds: m.seconds.toFixed(2),
    [`${m.unit}/s`]: Math.round(rate(m)).toLocaleString('en-US'),
    'vs baseline': baseline === undefined ? '' : `${(rate(m) / rate(baseline)).toFixed(2)}×`,
    'cpu s': m.cpuSeconds.toFixed(2),
    'peak MiB': m.peakRssMiB.toFixed(0),
  }));
  console.log(`\n${title}`);
  console.table(rows);
}

/** A count or a rate as printed: whole, with thousands separators. */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A positive number from the environment (a benchmark's size knob), or the default. */
export function positiveNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, not "${text}"`);
  return value;
}
