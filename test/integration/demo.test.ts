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
    expect(result.restored.users).toBe(120);
    expect(result.restored.messages).toBeGreaterThan(700);
    expect(output).toMatch(/deletes in tidemark_demo\.messages/);
    expect(output).toMatch(/120 updates in tidemark_demo\.users/);
    expect(output).toMatch(/every value equal to the source before the accident/);
    expect(result.steps.map((s) => s.name)).toContain(
      'the rows before the accident, read from the source for the check at the end',
    );
  }, 300_000);
});
