import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.js';

/** Every command a person can run, with its full name. */
function leaves(cmd: Command, prefix = ''): [string, Command][] {
  const name = `${prefix}${cmd.name()}`;
  if (cmd.commands.length === 0) return [[name, cmd]];
  return cmd.commands.flatMap((c) => leaves(c, `${name} `));
}

function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

describe('tidemark --help', () => {
  const program = buildProgram();

  it('shows examples at the top and for every command', () => {
    expect(helpOf(program)).toMatch(/Examples:\n {2}tidemark /);
    const commands = leaves(program);
    expect(commands.length).toBeGreaterThan(15);
    for (const [name, cmd] of commands) {
      const help = helpOf(cmd);
      expect(help, name).toMatch(/Examples?:\n {2}tidemark /);
      expect(cmd.description().length, name).toBeGreaterThan(20);
      // Every example names a real command of the program.
      for (const [, example] of help.matchAll(/^ {2}tidemark ([a-z]+(?: [a-z]+)?)/gm)) {
        const words = (example as string).split(' ');
        const known = program.commands.find((c) => c.name() === words[0]);
        expect(known, `${name}: example runs tidemark ${example}`).toBeDefined();
      }
    }
  });

  it('takes the configuration as -c/--config on every command that reads one', () => {
    for (const [name, cmd] of leaves(program)) {
      expect(
        cmd.options.some((o) => o.long === '--config' && o.short === '-c'),
        name,
      ).toBe(true);
    }
  });
});
