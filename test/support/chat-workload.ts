// Chat traffic on the tier fixture's `messages` table in small transactions: inserts, edits and deletes,
// all inside the hot window. Counts the row changes it committed.

import type mysql from 'mysql2/promise';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ChatWorkload {
  committed = 0;
  private stopped = false;
  private nextId: number;
  private readonly live: number[] = [];
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly conn: mysql.Connection,
    firstId = 1,
  ) {
    this.nextId = firstId;
  }

  start(opsPerSecond: number): void {
    this.stopped = false;
    this.done = this.loop(opsPerSecond);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(opsPerSecond: number): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      const statements = 1 + Math.floor(Math.random() * 4);
      await this.conn.query('BEGIN');
      for (let s = 0; s < statements; s++) {
        const dice = Math.random();
        if (dice < 0.55 || this.live.length < 10) {
          const id = this.nextId++;
          await this.conn.query('INSERT INTO messages VALUES (?, ?, ?, ?, ?, NULL, NULL, UTC_TIMESTAMP(6))', [
            id,
            id % 20,
            id % 50,
            `message ${id} 你好`,
            `${id}.5`,
          ]);
          this.live.push(id);
        } else if (dice < 0.85) {
          const id = this.live[Math.floor(Math.random() * this.live.length)] as number;
          await this.conn.query('UPDATE messages SET body = ? WHERE id = ?', [`edited ${Math.random()}`, id]);
        } else {
          const id = this.live.splice(Math.floor(Math.random() * this.live.length), 1)[0] as number;
          await this.conn.query('DELETE FROM messages WHERE id = ?', [id]);
        }
      }
      await this.conn.query('COMMIT');
      this.committed += statements;
      const pause = (statements * 1000) / opsPerSecond - (Date.now() - started);
      if (pause > 0) await sleep(pause);
    }
  }
}
