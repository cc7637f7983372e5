import type { Clock } from './clock.js';
import type { Hlc, NodeId } from './ids.js';

/**
 * Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014): a wall time in ms that
 * never goes backwards, a counter that orders events within one ms, and the node id as the final
 * tie-breaker. The string form is fixed-width, so string order is clock order.
 */
const wallDigits = 15;
const counterDigits = 6;
const counterMax = 10 ** counterDigits - 1;
const hlcPattern = /^(\d{15})\.(\d{6})\.([0-9a-f]{16})$/;

export interface HlcParts {
  wall: number;
  counter: number;
  node: NodeId;
}

export function formatHlc(parts: HlcParts): Hlc {
  return `${String(parts.wall).padStart(wallDigits, '0')}.${String(parts.counter).padStart(counterDigits, '0')}.${parts.node}` as Hlc;
}

export function parseHlc(value: string): HlcParts | undefined {
  const match = hlcPattern.exec(value);
  if (!match) return undefined;
  return { wall: Number(match[1]), counter: Number(match[2]), node: match[3] as NodeId };
}

export function isHlc(value: string): value is Hlc {
  return hlcPattern.test(value);
}

export function hlcWall(value: Hlc): number {
  return Number(value.slice(0, wallDigits));
}

/** The smallest HLC string greater than every HLC whose wall time is ≤ `ms`: an exclusive bound for "as of". */
export function hlcUpperBound(ms: number): string {
  return String(ms + 1).padStart(wallDigits, '0');
}

export class HybridClock {
  private wall = 0;
  private counter = 0;

  constructor(
    private readonly node: NodeId,
    private readonly clock: Clock,
  ) {}

  /** A timestamp for a local event, greater than every timestamp issued or observed before. */
  tick(): Hlc {
    const physical = this.clock.now();
    if (physical > this.wall) {
      this.wall = physical;
      this.counter = 0;
    } else {
      this.bumpCounter();
    }
    return formatHlc({ wall: this.wall, counter: this.counter, node: this.node });
  }

  /** Advance past a timestamp received from a peer or read back from the log. */
  observe(remote: Hlc): void {
    const parts = parseHlc(remote);
    if (!parts) throw new Error(`not an HLC: ${remote}`);
    if (parts.wall > this.wall) {
      this.wall = parts.wall;
      this.counter = parts.counter;
    } else if (parts.wall === this.wall && parts.counter > this.counter) {
      this.counter = parts.counter;
    }
  }

  private bumpCounter(): void {
    if (this.counter === counterMax) {
      // A million events in one ms: borrow the next millisecond rather than overflow the width.
      this.wall += 1;
      this.counter = 0;
    } else {
      this.counter += 1;
    }
  }
}
