import { describe, expect, it } from 'vitest';
import { ddlForLog } from './capture.js';

describe('ddlForLog', () => {
  it('logs table DDL with its string literals elided', () => {
    expect(ddlForLog('ALTER TABLE chat.users ADD COLUMN bio TEXT DEFAULT \'hello\' COMMENT "x"')).toBe(
      "ALTER TABLE chat.users ADD COLUMN bio TEXT DEFAULT '…' COMMENT '…'",
    );
    expect(ddlForLog('  create table t (id int)')).toBe('  create table t (id int)');
    expect(ddlForLog('RENAME TABLE a TO b')).toBe('RENAME TABLE a TO b');
  });

  it('never logs statements that carry credentials, nor other statements', () => {
    for (const statement of [
      "CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 's3cret'",
      "ALTER USER 'repl'@'%' IDENTIFIED BY 's3cret'",
      "GRANT SELECT ON chat.* TO 'r'@'%' IDENTIFIED BY 's3cret'",
      "SET PASSWORD FOR 'r'@'%' = PASSWORD('s3cret')",
      "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (PASSWORD 's3cret')",
      'BEGIN',
    ]) {
      expect(ddlForLog(statement), statement).toBeUndefined();
    }
    expect(ddlForLog("CREATE TABLE t (c VARCHAR(9) DEFAULT 'it''s s3cret')")).not.toContain('s3cret');
  });
});
