/**
 * Virtual time: a priority queue of events by virtual ms, ties broken by insertion order so that a
 * run is a pure function of its seed. Nothing in the simulator sleeps or reads the OS clock.
 */
interface Event {
  at: number;
  order: number;
  run: () => void;
}

export class Scheduler {
  private heap: Event[] = [];
  private inserted = 0;
  private current = 0;
  /** Events run so far: a figure of how much work a seed took. */
  executed = 0;

  get now(): number {
    return this.current;
  }

  at(time: number, run: () => void): void {
    const event = { at: Math.max(time, this.current), order: this.inserted, run };
    this.inserted += 1;
    this.heap.push(event);
    this.up(this.heap.length - 1);
  }

  after(delayMs: number, run: () => void): void {
    this.at(this.current + delayMs, run);
  }

  /** Runs events in order until the queue is empty, `until` has passed, or `stop()` says so. */
  runUntil(until: number, stop: () => boolean = () => false): void {
    while (this.heap.length > 0 && !stop()) {
      const next = this.heap[0] as Event;
      if (next.at > until) break;
      this.pop();
      this.current = next.at;
      this.executed += 1;
      next.run();
    }
    if (!stop() && this.current < until) this.current = until;
  }

  private pop(): void {
    const last = this.heap.pop() as Event;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    this.down(0);
  }

  private before(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private up(index: number): void {
    const heap = this.heap;
    let child = index;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.before(heap[child] as Event, heap[parent] as Event)) break;
      [heap[child], heap[parent]] = [heap[parent] as Event, heap[child] as Event];
      child = parent;
    }
  }

  private down(index: number): void {
    const heap = this.heap;
    let parent = index;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < heap.length && this.before(heap[left] as Event, heap[smallest] as Event)) smallest = left;
      if (right < heap.length && this.before(heap[right] as Event, heap[smallest] as Event)) smallest = right;
      if (smallest === parent) return;
      [heap[parent], heap[smallest]] = [heap[smallest] as Event, heap[parent] as Event];
      parent = smallest;
    }
  }
}
