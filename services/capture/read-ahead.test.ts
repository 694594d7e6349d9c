// Capture's backpressure on the source (binlog-stream.ts ReadAhead): a full queue pauses decoding but not
// reading, until a byte limit of undecoded packets pauses the socket. The connection here follows mysql2's
// own handlePacket/resume (the library tidemark pins) so the test exercises the same hand-over.

import { describe, expect, it } from 'vitest';
import { ReadAhead, type SourceConnection } from './binlog-stream.js';

interface Packet {
  start: number;
  end: number;
}

class FakeConnection implements SourceConnection {
  _paused = false;
  _paused_packets = {
    items: [] as Packet[],
    push(packet: Packet | null) {
      if (packet) this.items.push(packet);
      return this.items.length;
    },
    shift() {
      return this.items.shift();
    },
  };
  streamPaused = false;
  stream = {
    pause: () => void (this.streamPaused = true),
    resume: () => void (this.streamPaused = false),
  };
  handled: Packet[] = [];
  constructor(private readonly onHandle: (p: Packet) => void = () => undefined) {}
  /** What mysql2 does with each packet read from the socket. */
  arrive(packet: Packet): void {
    if (this._paused) this._paused_packets.push(packet);
    else this.handle(packet);
  }
  handle(packet: Packet): void {
    this.handled.push(packet);
    this.onHandle(packet);
  }
  pause(): void {
    this._paused = true;
    this.streamPaused = true;
  }
  /** mysql2's resume: the kept packets in order, stopping if one of them pauses again. */
  resume(): void {
    this._paused = false;
    let packet: Packet | undefined;
    while ((packet = this._paused_packets.shift())) {
      this.handle(packet);
      if (this._paused) return;
    }
    this.streamPaused = false;
  }
}

const packet = (size: number, at = 0): Packet => ({ start: at, end: at + size });

describe('mysql2 packet copies (patch)', () => {
  it('keep the number of packets a joined packet was made of', async () => {
    // The package exports only its entry points; the packet is loaded from its file.
    const { default: Packet } = (await import(
      new URL('../../node_modules/mysql2/lib/packets/packet.js', import.meta.url).href
    )) as {
      default: new (
        id: number,
        buffer: Buffer,
        start: number,
        end: number,
      ) => { numPackets: number; clone(): { numPackets: number } };
    };
    const joined = new Packet(3, Buffer.alloc(16), 0, 16);
    joined.numPackets = 3;
    expect(joined.clone().numPackets).toBe(3);
  });
});

describe('ReadAhead', () => {
  it('pauses decoding, keeps reading, and pauses the socket only past its byte limit', () => {
    const conn = new FakeConnection();
    const readAhead = new ReadAhead(1000);
    readAhead.pause(conn);
    expect(conn._paused).toBe(true);
    expect(conn.streamPaused).toBe(false);
    for (let i = 0; i < 4; i++) conn.arrive(packet(300, i * 300));
    expect(readAhead.bytes).toBe(1200);
    expect(conn.streamPaused).toBe(true);
    expect(conn.handled).toHaveLength(0);
    // Room again: everything kept is decoded in order, the counted bytes go back to zero, reading resumes.
    conn.resume();
    expect(conn.handled.map((p) => p.start)).toEqual([0, 300, 600, 900]);
    expect(readAhead.bytes).toBe(0);
    expect(conn.streamPaused).toBe(false);
  });

  it('counts what stays kept when decoding pauses again during the hand-over', () => {
    const readAhead = new ReadAhead(1000);
    let decoded = 0;
    const conn: FakeConnection = new FakeConnection(() => {
      if (++decoded === 2) readAhead.pause(conn);
    });
    readAhead.pause(conn);
    for (let i = 0; i < 5; i++) conn.arrive(packet(100, i * 100));
    conn.resume();
    expect(conn.handled).toHaveLength(2);
    expect(readAhead.bytes).toBe(300);
    expect(conn._paused).toBe(true);
    conn.resume();
    expect(conn.handled).toHaveLength(5);
    expect(readAhead.bytes).toBe(0);
  });

  it('reads again once half of the kept bytes are decoded, though decoding paused again', () => {
    const readAhead = new ReadAhead(1000);
    let decoded = 0;
    const conn: FakeConnection = new FakeConnection(() => {
      if (++decoded === 8) readAhead.pause(conn);
    });
    readAhead.pause(conn);
    for (let i = 0; i < 10; i++) conn.arrive(packet(200, i * 200));
    expect(conn.streamPaused).toBe(true);
    conn.resume();
    // Decoding paused again after the 8th packet; 400 bytes are kept, under half the limit: reading goes on.
    expect(conn.handled).toHaveLength(8);
    expect(readAhead.bytes).toBe(400);
    expect(conn._paused).toBe(true);
    expect(conn.streamPaused).toBe(false);
  });

  it('pauses a connection without mysql2 internals as a whole', () => {
    let paused = 0;
    const plain: SourceConnection = {
      pause: () => void paused++,
      resume: () => undefined,
      stream: { pause: () => undefined, resume: () => undefined },
    };
    new ReadAhead(1000).pause(plain);
    expect(paused).toBe(1);
  });
});
