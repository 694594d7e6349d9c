// What capture reports to Prometheus: throughput, lag, checkpoint, Kafka latency, queue depth, state.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AlertMetrics } from '../core/index.js';

export type CaptureState = 'starting' | 'standby' | 'snapshot' | 'streaming' | 'reconnecting' | 'stopped';
const STATES: CaptureState[] = ['starting', 'standby', 'snapshot', 'streaming', 'reconnecting', 'stopped'];

export class CaptureMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'tidemark_capture_events_total',
    help: 'Change events sent to Kafka, by table and op',
    labelNames: ['table', 'op'],
    registers: [this.registry],
  });
  readonly lagSeconds = new Gauge({
    name: 'tidemark_capture_lag_seconds',
    help: 'Seconds between the source time of the last committed transaction and now',
    registers: [this.registry],
  });
  readonly checkpointFile = new Gauge({
    name: 'tidemark_capture_checkpoint_binlog_file',
    help: 'Binlog file sequence number of the last checkpoint',
    registers: [this.registry],
  });
  readonly checkpointOffset = new Gauge({
    name: 'tidemark_capture_checkpoint_binlog_offset',
    help: 'Binlog offset of the last checkpoint',
    registers: [this.registry],
  });
  readonly checkpointTime = new Gauge({
    name: 'tidemark_capture_checkpoint_timestamp_seconds',
    help: 'Wall-clock time the last checkpoint was committed',
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: 'tidemark_capture_kafka_commit_seconds',
    help: 'Time to send and commit one Kafka transaction',
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'tidemark_capture_queue_depth',
    help: 'Binlog rows (other events count one each) read from the source and not yet processed',
    registers: [this.registry],
  });
  readonly state = new Gauge({
    name: 'tidemark_capture_state',
    help: '1 for the current state of this capture instance',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly restarts = new Counter({
    name: 'tidemark_capture_restarts_total',
    help: 'Times capture reconnected after a failure',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly sourceSilent = new Gauge({
    name: 'tidemark_capture_source_silent',
    help: '1 when the source sent neither events nor heartbeats for longer than capture.silentAfterSeconds',
    registers: [this.registry],
  });
  current: CaptureState = 'starting';
  /** The values behind lagSeconds and sourceSilent, for the alerts. */
  private lag = 0;
  private silent = false;

  setLag(seconds: number): void {
    this.lag = seconds;
    this.lagSeconds.set(seconds);
  }

  lagNow(): number {
    return this.lag;
  }

  setSourceSilent(silent: boolean): void {
    this.silent = silent;
    this.sourceSilent.set(silent ? 1 : 0);
  }

  sourceSilentNow(): boolean {
    return this.silent;
  }

  readonly alerts = new AlertMetrics(this.registry);

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tidemark_capture_process_' });
    this.setState('starting');
  }

  setState(state: CaptureState): void {
    this.current = state;
    for (const s of STATES) this.state.set({ state: s }, s === state ? 1 : 0);
  }
}
