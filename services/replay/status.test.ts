import { describe, expect, it } from 'vitest';
import { duration, formatStatus, type DeploymentStatus } from './status.js';

const at = Date.parse('2026-03-01T12:00:00Z');

describe('formatStatus', () => {
  it('reads as a report: lag, groups, last upload, window, problems', () => {
    const s: DeploymentStatus = {
      atMs: at,
      source: { address: '10.0.0.5:3306', binlog: { file: 'mysql-bin.000012', offset: 9000 } },
      capture: {
        checkpoint: {
          captureId: 'chat',
          phase: 'streaming',
          binlogFile: 'mysql-bin.000012',
          binlogOffset: 4000,
          gtidSet: null,
          tsMs: at - 3000,
          writtenMs: at - 1000,
          snapshot: null,
        },
        behind: { files: 0, bytes: 5000, seconds: 3 },
      },
      kafka: {
        brokers: 'k:9092',
        topics: 2,
        events: 12345,
        groups: [{ group: 'tidemark.tier.cold', lag: 70, uncommitted: 1, partitions: 4 }],
      },
      archive: {
        url: 's3://archive/chat',
        tables: [
          {
            table: 'chat.messages',
            files: 3,
            bytes: 4096,
            rows: 1500,
            lastUploadMs: at - 90_000,
            first: { pos: '', tsMs: at - 86_400_000 },
            last: { pos: '', tsMs: at - 60_000 },
            tailEvents: 12,
            gaps: [],
          },
        ],
      },
      snapshots: { count: 0 },
      problems: ['archive: chat.messages: partition 0: offsets 10–19 left Kafka before they were archived'],
    };
    const text = formatStatus(s);
    expect(text).toContain('binlog ends at mysql-bin.000012:9000');
    expect(text).toContain('checkpoint mysql-bin.000012:4000 written 1 s ago, 5,000 bytes behind (lag 3 s)');
    expect(text).toContain(
      'group tidemark.tier.cold: lag 70 records over 4 partitions, 1/4 partitions never committed',
    );
    expect(text).toContain('1 tables, 3 files, 4.0 KiB, last upload 2026-03-01T11:58:30Z (90 s ago)');
    expect(text).toContain('snapshots  none yet');
    expect(text).toMatch(
      /chat\.messages {2}2026-02-28T12:00:00Z … 2026-03-01T11:59:00Z, then up to 12 changes still in Kafka/,
    );
    expect(text).toContain('1 problem(s):\n  - archive: chat.messages: partition 0');
  });

  it('says when nothing needs attention, and names unreachable parts', () => {
    const text = formatStatus({
      atMs: at,
      source: { address: 'db:3306', error: 'cannot connect to the source db:3306: ECONNREFUSED' },
      problems: [],
    });
    expect(text).toContain('source     db:3306: cannot connect to the source db:3306: ECONNREFUSED');
    expect(text).toContain('no problems found');
  });

  it('prints durations at a useful scale', () => {
    expect(duration(42_000)).toBe('42 s');
    expect(duration(30 * 60_000)).toBe('30 min');
    expect(duration(5 * 3_600_000)).toBe('5.0 h');
    expect(duration(3 * 86_400_000)).toBe('3.0 days');
  });
});
