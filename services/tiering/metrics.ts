// What tiering reports to Prometheus: lag per group and partition, rows applied, files and bytes archived,
// upload age, evictions, retries and stopped partitions.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AlertMetrics } from '../core/index.js';

export class TierMetrics {
  readonly registry = new Registry();
  readonly lag = new Gauge({
    name: 'tidemark_tier_lag_messages',
    help: 'Messages in the partition not yet handled by the consumer group (high watermark minus position)',
    labelNames: ['group', 'topic', 'partition'],
    registers: [this.registry],
  });
  readonly rowsApplied = new Counter({
    name: 'tidemark_tier_hot_rows_applied_total',
    help: 'Change events applied to the hot replica, by table and op',
    labelNames: ['table', 'op'],
    registers: [this.registry],
  });
  readonly staleSkipped = new Counter({
    name: 'tidemark_tier_hot_stale_events_total',
    help: 'Events not applied because the replica already held a newer position of the row',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly evicted = new Counter({
    name: 'tidemark_tier_hot_evicted_total',
    help: 'Rows removed from the hot replica because they left their window (kind=row) or tombstones expired',
    labelNames: ['table', 'kind'],
    registers: [this.registry],
  });
  readonly writeSeconds = new Histogram({
    name: 'tidemark_tier_hot_write_seconds',
    help: 'Time to write one batch to the hot replica',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly filesWritten = new Counter({
    name: 'tidemark_tier_cold_files_total',
    help: 'Data files written to the archive, by table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly bytesWritten = new Counter({
    name: 'tidemark_tier_cold_bytes_total',
    help: 'Bytes of data files written to the archive (as stored), by table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly eventsArchived = new Counter({
    name: 'tidemark_tier_cold_events_total',
    help: 'Change events written to the archive, by table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly lastUpload = new Gauge({
    name: 'tidemark_tier_cold_last_upload_timestamp_seconds',
    help: 'Wall-clock time of the last successful upload to the archive',
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'tidemark_tier_retries_total',
    help: 'Batches retried because a store or Kafka failed, by group',
    labelNames: ['group'],
    registers: [this.registry],
  });
  readonly stoppedPartitions = new Gauge({
    name: 'tidemark_tier_stopped_partitions',
    help: 'Partitions stopped on an event that cannot be read (see the log for topic, partition and offset)',
    labelNames: ['group'],
    registers: [this.registry],
  });

  readonly alerts = new AlertMetrics(this.registry);

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
