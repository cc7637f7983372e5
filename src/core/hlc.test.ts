import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { formatHlc, HybridClock, hlcUpperBound, hlcWall, isHlc, parseHlc } from './hlc.js';
import type { Hlc, NodeId } from './ids.js';

const nodeA = '00000000000000aa' as NodeId;
const nodeB = '00000000000000bb' as NodeId;

const nodeId = fc
  .array(fc.constantFrom(...'0123456789abcdef'), { minLength: 16, maxLength: 16 })
  .map((chars) => chars.join('') as NodeId);
const parts = fc.record({
  wall: fc.integer({ min: 0, max: 10 ** 15 - 1 }),
  counter: fc.integer({ min: 0, max: 999_999 }),
  node: nodeId,
});

function compareParts(
  a: { wall: number; counter: number; node: string },
  b: { wall: number; counter: number; node: string },
): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.node !== b.node) return a.node < b.node ? -1 : 1;
  return 0;
}

describe('HybridClock', () => {
  it('uses the physical time when it moves forward, with counter 0', () => {
    const clock = new ManualClock(1_000);
    const hlc = new HybridClock(nodeA, clock);
    expect(parseHlc(hlc.tick())).toEqual({ wall: 1_000, counter: 0, node: nodeA });
    clock.advance(5);
    expect(parseHlc(hlc.tick())).toEqual({ wall: 1_005, counter: 0, node: nodeA });
  });

  it('bumps the counter for events within one millisecond', () => {
    const hlc = new HybridClock(nodeA, new ManualClock(1_000));
    const stamps = [hlc.tick(), hlc.tick(), hlc.tick()];
    expect(stamps.map((s) => parseHlc(s)?.counter)).toEqual([0, 1, 2]);
    expect(stamps.map((s) => hlcWall(s))).toEqual([1_000, 1_000, 1_000]);
  });

  it('stays monotonic when the physical clock goes backwards', () => {
    const clock = new ManualClock(10_000);
    const hlc = new HybridClock(nodeA, clock);
    const first = hlc.tick();
    clock.set(4_000);
    const second = hlc.tick();
    const third = hlc.tick();
    expect(second > first).toBe(true);
    expect(third > second).toBe(true);
    expect(hlcWall(second)).toBe(10_000);
    expect(parseHlc(third)?.counter).toBe(2);
    clock.set(10_001);
    expect(parseHlc(hlc.tick())).toEqual({ wall: 10_001, counter: 0, node: nodeA });
  });

  it('issues strictly increasing timestamps whatever the clock does (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 60 }), (times) => {
        const clock = new ManualClock(times[0] as number);
        const hlc = new HybridClock(nodeA, clock);
        let previous = '';
        for (const time of times) {
          clock.set(time);
          const stamp = hlc.tick();
          expect(stamp > previous).toBe(true);
          expect(hlcWall(stamp)).toBeGreaterThanOrEqual(time);
          previous = stamp;
        }
      }),
    );
  });

  it('moves past a remote timestamp that is ahead of the local clock', () => {
    const clock = new ManualClock(1_000);
    const hlc = new HybridClock(nodeA, clock);
    hlc.tick();
    const remote = formatHlc({ wall: 50_000, counter: 7, node: nodeB });
    hlc.observe(remote);
    const next = hlc.tick();
    expect(next > remote).toBe(true);
    expect(parseHlc(next)).toEqual({ wall: 50_000, counter: 8, node: nodeA });
  });

  it('takes the greater counter of a remote at the same wall time', () => {
    const hlc = new HybridClock(nodeA, new ManualClock(1_000));
    hlc.tick();
    hlc.observe(formatHlc({ wall: 1_000, counter: 40, node: nodeB }));
    expect(parseHlc(hlc.tick())?.counter).toBe(41);
  });

  it('ignores a remote timestamp that is behind', () => {
    const clock = new ManualClock(5_000);
    const hlc = new HybridClock(nodeA, clock);
    hlc.tick();
    hlc.observe(formatHlc({ wall: 1_000, counter: 900, node: nodeB }));
    expect(parseHlc(hlc.tick())).toEqual({ wall: 5_000, counter: 1, node: nodeA });
  });

  it('rejects something that is not an HLC in observe()', () => {
    const hlc = new HybridClock(nodeA, new ManualClock(0));
    expect(() => hlc.observe('not-an-hlc' as Hlc)).toThrow();
  });

  it('borrows the next millisecond when the counter would overflow its width', () => {
    const hlc = new HybridClock(nodeA, new ManualClock(1_000));
    hlc.observe(formatHlc({ wall: 1_000, counter: 999_999, node: nodeB }));
    const next = hlc.tick();
    expect(parseHlc(next)).toEqual({ wall: 1_001, counter: 0, node: nodeA });
    expect(isHlc(next)).toBe(true);
  });
});

describe('HLC strings', () => {
  it('round-trips through formatHlc and parseHlc (property)', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const formatted = formatHlc(p);
        expect(isHlc(formatted)).toBe(true);
        expect(parseHlc(formatted)).toEqual(p);
        expect(hlcWall(formatted)).toBe(p.wall);
      }),
    );
  });

  it('sorts as strings exactly as (wall, counter, node) sorts (property)', () => {
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const as = formatHlc(a);
        const bs = formatHlc(b);
        const stringOrder = as === bs ? 0 : as < bs ? -1 : 1;
        expect(stringOrder).toBe(compareParts(a, b));
      }),
    );
  });

  it('orders a shorter wall time before a longer one (fixed width)', () => {
    expect(
      formatHlc({ wall: 9, counter: 0, node: nodeA }) < formatHlc({ wall: 10, counter: 0, node: nodeA }),
    ).toBe(true);
    expect(
      formatHlc({ wall: 1, counter: 9, node: nodeA }) < formatHlc({ wall: 1, counter: 10, node: nodeA }),
    ).toBe(true);
  });

  it.each([
    '',
    '1.000000.00000000000000aa',
    '000000000001000.0.00000000000000aa',
    '000000000001000.000000.00000000000000AA',
    '000000000001000.000000.00000000000000a',
    '000000000001000.000000.00000000000000aa ',
    '000000000001000-000000-00000000000000aa',
  ])('parseHlc rejects %j', (value) => {
    expect(parseHlc(value)).toBeUndefined();
    expect(isHlc(value)).toBe(false);
  });
});

describe('hlcUpperBound', () => {
  it('is above every HLC with wall ≤ ms and at or below every HLC with wall > ms (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 14 }), parts, (ms, p) => {
        const bound = hlcUpperBound(ms);
        const stamp = formatHlc(p);
        expect(stamp < bound).toBe(p.wall <= ms);
      }),
    );
  });

  it('decides correctly right at the boundary (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 ** 14 }),
        fc.integer({ min: -2, max: 2 }),
        parts,
        (ms, delta, p) => {
          const stamp = formatHlc({ ...p, wall: ms + delta });
          expect(stamp < hlcUpperBound(ms)).toBe(delta <= 0);
        },
      ),
    );
  });

  it('includes the greatest HLC of the bound millisecond and excludes the first of the next', () => {
    const bound = hlcUpperBound(1_000);
    expect(formatHlc({ wall: 1_000, counter: 999_999, node: 'ffffffffffffffff' as NodeId }) < bound).toBe(
      true,
    );
    expect(formatHlc({ wall: 1_001, counter: 0, node: '0000000000000000' as NodeId }) < bound).toBe(false);
  });
});
