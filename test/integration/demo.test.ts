// `make demo`'s accident-and-restore path, as the demo runs it: live traffic through the real daemons, the
// accident, the bad transactions found, both tables restored and checked against the rows before it.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../deploy/demo/demo.js';

describe('make demo', () => {
  it('restores the deleted room and the overwritten profiles to the rows before the accident', async () => {
    let output = '';
    const result = await runDemo({
      durationSeconds: 6,
      rate: 80,
      workDir: mkdtempSync(join(tmpdir(), 'tidemark-demo-')),
      write: (text) => (output += text),
      tty: false,
    });
    expect(result.matched, output).toBe(true);
    expect(result.verified, output).toBe(true);
    expect(output).toMatch(/restore drill at .*\n(.*every row equal\n){4}/);
    expect(result.restored.users).toBe(120);
    expect(result.restored.messages).toBeGreaterThan(700);
    expect(output).toMatch(/deletes in tidemark_demo\.messages/);
    expect(output).toMatch(/120 updates in tidemark_demo\.users/);
    expect(output).toMatch(/every value equal to the source before the accident/);
    // `tidemark status` while the pipeline ran: every part read, nothing needing attention.
    const { status } = result;
    expect(status.problems, output).toEqual([]);
    expect(status.source?.binlog).toBeDefined();
    expect(status.capture?.checkpoint?.phase).toBe('streaming');
    expect(status.kafka?.groups.map((g) => g.group).sort()).toEqual([
      expect.stringMatching(/\.tier\.cold$/),
      expect.stringMatching(/\.tier\.hot$/),
    ]);
    expect(status.archive?.tables.map((t) => t.table).sort()).toEqual(
      ['messages', 'room_members', 'rooms', 'users'].map((t) => `tidemark_demo.${t}`),
    );
    for (const t of status.archive!.tables) {
      expect(t.files, t.table).toBeGreaterThan(0);
      expect(t.first!.tsMs, t.table).toBeLessThanOrEqual(t.last!.tsMs);
    }
    // (A run this short may end before the scheduler's first snapshot.)
    expect(status.snapshots?.error).toBeUndefined();
    expect(output).toMatch(/restorable window/);
    expect(result.steps.map((s) => s.name)).toContain(
      'the rows before the accident, read from the source for the check at the end',
    );
  }, 300_000);
});
