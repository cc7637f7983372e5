import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A userspace TCP fault proxy for end-to-end cluster tests on one machine, where `tc netem` is not
 * available. Each node advertises its proxy's address instead of its own, so everything sent to node X
 * passes through X's proxy, and rules are applied per caller: the node named by the
 * `strata-peer-name` header of the first HTTP request on a connection (the cluster link's WebSocket
 * upgrade, or an HTTP pull). Connections without that header (test clients, garbage) are anonymous
 * and follow the `'*'` rule only.
 */

export interface FaultRule {
  /** Every chunk, in both directions, is delivered this long after it reached the proxy, in order. */
  delayMs?: number;
  /** Throughput per direction: bytes are serialised at this rate, as on a slow link (250 ≈ 2 kbit/s). */
  bytesPerSecond?: number;
  /** Nothing passes in either direction, not even a close; bytes are dropped and counted as held. */
  blocked?: boolean;
}

export interface FaultProxyStats {
  /** Connections open now, including ones whose caller is not known yet. */
  connections: number;
  /** Bytes delivered, both directions, since the proxy started. */
  bytesForwarded: number;
  /** Bytes dropped because their connection was blocked, both directions, since the proxy started. */
  bytesHeld: number;
}

/** Matches any caller, anonymous ones included; a named caller's own rule fields override it. */
export const everyCaller = '*';

/** The header a peer sends on the first request of each connection (names are case-insensitive, RFC 9110 §5.1). */
const callerHeader = 'strata-peer-name';
/** The most of a connection's first bytes looked at for the caller; Node's default header limit is 16 KiB too. */
const headBytesMax = 16 * 1024;
/** A connection that sends nothing for this long is anonymous, so protocols where the server speaks first work. */
const headWaitMs = 2_000;
/**
 * Stop reading from a side once this much waits to be delivered to the other: a slow or delayed link then
 * pushes back on the sender the way a TCP window does, instead of swallowing everything it is given.
 */
const pendingBytesPause = 1024 * 1024;
const pendingBytesResume = pendingBytesPause / 2;
/** A safety net per direction: with the pause above it is never reached, so reaching it means a bug here. */
const pendingBytesMax = 64 * 1024 * 1024;
/** A rate-limited link releases bytes in slices of about this much link time: a trickle, not bursts. */
const rateSliceMs = 20;
/** Far more than a test cluster opens; more is a leak in the code under test. */
const connectionsMax = 1_024;

const tokenCharacters = "[!#$%&'*+.^_`|~0-9A-Za-z-]";
/** An HTTP/1.x request line (RFC 9112 §3). */
const requestLine = new RegExp(`^${tokenCharacters}+ [\\x21-\\x7e]+ HTTP/\\d\\.\\d$`);
/** What a request line can look like before its end has arrived. */
const requestLinePrefix = new RegExp(`^${tokenCharacters}*(?: [\\x21-\\x7e]*(?: [HTP/\\d.]{0,8})?)?$`);
const headEnd = '\r\n\r\n';

export type HeadScan = { complete: false } | { complete: true; caller: string | undefined };

/**
 * Decides from a connection's first bytes whether its caller is known yet: once the HTTP head has
 * ended, once `headBytesMax` bytes have arrived, or as soon as the bytes cannot start an HTTP request
 * (then the caller is anonymous and the bytes are forwarded as they are).
 */
export function scanHead(bytes: Buffer): HeadScan {
  const text = bytes.subarray(0, headBytesMax).toString('latin1');
  if (text.includes(headEnd) || bytes.length >= headBytesMax) {
    return { complete: true, caller: callerFromHead(bytes) };
  }
  const lineEnd = text.indexOf('\r\n');
  const firstLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
  const plausible = lineEnd === -1 ? requestLinePrefix.test(firstLine) : requestLine.test(firstLine);
  return plausible ? { complete: false } : { complete: true, caller: undefined };
}

/** The caller named by a request head, looking only at its complete lines; undefined if it names none. */
export function callerFromHead(bytes: Buffer): string | undefined {
  const text = bytes.subarray(0, headBytesMax).toString('latin1');
  const end = text.indexOf(headEnd);
  const cut = end === -1 ? text.lastIndexOf('\r\n') : end;
  if (cut === -1) return undefined;
  const [first, ...fields] = text.slice(0, cut).split('\r\n');
  if (first === undefined || !requestLine.test(first)) return undefined;
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0 || field.slice(0, colon).toLowerCase() !== callerHeader) continue;
    // Field values lose their leading and trailing whitespace (RFC 9110 §5.5).
    const value = field.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    return value === '' ? undefined : value;
  }
  return undefined;
}

export class FaultProxy {
  private readonly server: Server;
  private readonly rules = new Map<string, FaultRule>();
  private readonly connections = new Set<ProxiedConnection>();
  private readonly counters: Counters = { bytesForwarded: 0, bytesHeld: 0 };
  private listeningPort = 0;
  private closing: Promise<void> | undefined;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    this.server.maxConnections = connectionsMax;
  }

  /** Listens on 127.0.0.1 at a free port and forwards every connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy({ ...target });
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    proxy.listeningPort = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** `http://127.0.0.1:<port>`: what the node behind this proxy should advertise. */
  get url(): string {
    return `http://127.0.0.1:${this.listeningPort}`;
  }

  /** Replaces the rule of `caller` (or of every caller, `'*'`); it applies to open connections at once. */
  setRule(caller: string, rule: FaultRule): void {
    checkRule(rule);
    this.rules.set(caller, { ...rule });
    this.refresh();
  }

  clearRule(caller: string): void {
    this.rules.delete(caller);
    this.refresh();
  }

  /**
   * Cuts these callers off like an nftables DROP: their open connections stay open but go silent both
   * ways, and their new connections are accepted but never reach the target nor get an answer.
   */
  block(callers: string[]): void {
    for (const caller of callers) this.rules.set(caller, { ...this.rules.get(caller), blocked: true });
    this.refresh();
  }

  /**
   * Lifts what `block` (or a rule's `blocked`) set on these callers, or on all. Connections that were
   * blocked lost bytes, so they are reset on both sides and the peers reconnect. Other rule fields stay.
   */
  heal(callers?: string[]): void {
    for (const caller of callers ?? [...this.rules.keys()]) {
      const rule = this.rules.get(caller);
      if (rule === undefined) continue;
      const { blocked: _lifted, ...rest } = rule;
      if (Object.values(rest).some((value) => value !== undefined)) this.rules.set(caller, rest);
      else this.rules.delete(caller);
    }
    this.refresh();
  }

  stats(): FaultProxyStats {
    return { connections: this.connections.size, ...this.counters };
  }

  /** Destroys every connection and resolves once the server is closed. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const connection of [...this.connections]) connection.destroy(false);
      this.server.close(() => resolve());
    });
    return this.closing;
  }

  private accept(client: Socket): void {
    if (this.closing) {
      client.destroy();
      return;
    }
    const connection = new ProxiedConnection(client, {
      target: this.target,
      counters: this.counters,
      ruleFor: (caller) => this.ruleFor(caller),
      forget: (closed) => this.connections.delete(closed),
    });
    this.connections.add(connection);
  }

  private ruleFor(caller: string | undefined): FaultRule {
    const shared = this.rules.get(everyCaller) ?? {};
    const own = caller === undefined ? undefined : this.rules.get(caller);
    if (own === undefined) return shared;
    const merged: FaultRule = { ...shared };
    if (own.delayMs !== undefined) merged.delayMs = own.delayMs;
    if (own.bytesPerSecond !== undefined) merged.bytesPerSecond = own.bytesPerSecond;
    if (own.blocked !== undefined) merged.blocked = own.blocked;
    return merged;
  }

  private refresh(): void {
    for (const connection of [...this.connections]) connection.refresh();
  }
}

function checkRule(rule: FaultRule): void {
  if (rule.delayMs !== undefined && !(Number.isFinite(rule.delayMs) && rule.delayMs >= 0)) {
    throw new RangeError(`delayMs must be a finite number ≥ 0, got ${rule.delayMs}`);
  }
  if (
    rule.bytesPerSecond !== undefined &&
    !(Number.isFinite(rule.bytesPerSecond) && rule.bytesPerSecond > 0)
  ) {
    throw new RangeError(`bytesPerSecond must be a finite number > 0, got ${rule.bytesPerSecond}`);
  }
}

interface Counters {
  bytesForwarded: number;
  bytesHeld: number;
}

interface ConnectionHost {
  target: { host: string; port: number };
  counters: Counters;
  ruleFor(caller: string | undefined): FaultRule;
  forget(connection: ProxiedConnection): void;
}

interface TimedChunk {
  chunk: Buffer;
  arrivedAtMs: number;
}

/** What a pipe needs from its connection: the rule in force, the counters, and a way to give up. */
interface Link {
  readonly rule: FaultRule;
  readonly counters: Counters;
  fail(): void;
}

const ignore = (): void => {};

/**
 * One client connection and its upstream connection. The upstream is opened only once the caller is
 * known, so a connection that starts blocked never reaches the target, as a dropped SYN would not.
 */
class ProxiedConnection implements Link {
  caller: string | undefined;
  rule: FaultRule = {};
  private detecting = true;
  private head: TimedChunk[] = [];
  private readonly headTimer: NodeJS.Timeout;
  /** Set once the connection has been blocked: it lost bytes, so it can only be reset, never resumed. */
  private stalled = false;
  private destroyed = false;
  private clientEnded = false;
  private clientClosed = false;
  private upstreamClosed = false;
  private upstream: Socket | undefined;
  private toUpstream: Pipe | undefined;
  private toClient: Pipe | undefined;

  constructor(
    private readonly client: Socket,
    private readonly host: ConnectionHost,
  ) {
    client.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.fromClient(chunk));
    client.on('end', () => this.endFromClient());
    client.on('error', ignore);
    client.on('close', (hadError) => this.socketClosed('client', hadError));
    this.headTimer = setTimeout(() => this.decide(callerFromHead(this.headBytes())), headWaitMs);
  }

  get counters(): Counters {
    return this.host.counters;
  }

  /** Takes a rule change into account: a blocked connection stalls, a stalled one that is unblocked is reset. */
  refresh(): void {
    if (this.detecting || this.destroyed) return;
    this.rule = this.host.ruleFor(this.caller);
    if (this.rule.blocked) this.stalled = true;
    else if (this.stalled) {
      this.destroy(true);
      return;
    }
    this.toUpstream?.pump();
    this.toClient?.pump();
  }

  fail(): void {
    this.destroy(true);
  }

  /** Closes both sides; `reset` sends a TCP RST so that peers see a broken connection, not a clean end. */
  destroy(reset: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.headTimer);
    this.toUpstream?.dispose();
    this.toClient?.dispose();
    for (const socket of [this.client, this.upstream]) {
      if (socket === undefined || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
    this.host.forget(this);
  }

  private fromClient(chunk: Buffer): void {
    const arrivedAtMs = performance.now();
    if (this.detecting) {
      this.head.push({ chunk, arrivedAtMs });
      const scan = scanHead(this.headBytes());
      if (scan.complete) this.decide(scan.caller);
    } else if (this.toUpstream) this.toUpstream.push(chunk, arrivedAtMs);
    else this.counters.bytesHeld += chunk.length;
  }

  private endFromClient(): void {
    this.clientEnded = true;
    if (this.detecting) this.decide(callerFromHead(this.headBytes()));
    else this.toUpstream?.end();
  }

  private headBytes(): Buffer {
    return Buffer.concat(this.head.map((timed) => timed.chunk));
  }

  private decide(caller: string | undefined): void {
    if (!this.detecting || this.destroyed) return;
    this.detecting = false;
    clearTimeout(this.headTimer);
    const head = this.head;
    this.head = [];
    this.caller = caller;
    this.rule = this.host.ruleFor(caller);
    if (this.rule.blocked) {
      this.stalled = true;
      for (const timed of head) this.counters.bytesHeld += timed.chunk.length;
      return;
    }
    const upstream = createConnection({ ...this.host.target, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    const toUpstream = new Pipe(this.client, upstream, this);
    const toClient = new Pipe(upstream, this.client, this);
    this.toUpstream = toUpstream;
    this.toClient = toClient;
    upstream.on('data', (chunk: Buffer) => toClient.push(chunk, performance.now()));
    upstream.on('end', () => toClient.end());
    upstream.on('error', ignore);
    upstream.on('close', (hadError) => this.socketClosed('upstream', hadError));
    for (const timed of head) toUpstream.push(timed.chunk, timed.arrivedAtMs);
    if (this.clientEnded) toUpstream.end();
  }

  private socketClosed(side: 'client' | 'upstream', hadError: boolean): void {
    if (side === 'client') this.clientClosed = true;
    else this.upstreamClosed = true;
    const upstreamGone = this.upstream === undefined || this.upstreamClosed;
    if (this.clientClosed && upstreamGone) this.destroy(false);
    // A reset crosses the proxy as a reset, unless the connection is blocked: then nothing crosses it.
    else if (hadError && !this.stalled) this.destroy(true);
  }
}

/**
 * One direction of a connection: a FIFO of chunks stamped with their arrival time, and one timer for
 * the moment the head of the queue is due. Delay holds each chunk until `arrivedAtMs + delayMs`; the
 * rate then serialises bytes one after another, `linkFreeAtMs` being when the last one sent has left.
 */
class Pipe {
  private readonly queue: TimedChunk[] = [];
  private first = 0;
  private queuedBytes = 0;
  private linkFreeAtMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private sourceEnded = false;
  private destinationEnded = false;
  private sourcePaused = false;
  private disposed = false;

  constructor(
    private readonly source: Socket,
    private readonly destination: Socket,
    private readonly link: Link,
  ) {
    destination.on('drain', () => this.relieve());
  }

  push(chunk: Buffer, arrivedAtMs: number): void {
    if (this.disposed) return;
    if (this.link.rule.blocked) {
      this.link.counters.bytesHeld += chunk.length;
      return;
    }
    this.queue.push({ chunk, arrivedAtMs });
    this.queuedBytes += chunk.length;
    const pending = this.pendingBytes();
    if (pending > pendingBytesMax) {
      this.link.fail();
      return;
    }
    if (pending >= pendingBytesPause && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source.pause();
    }
    this.pump();
  }

  /** The source has sent its FIN; it is passed on once everything before it has been delivered. */
  end(): void {
    this.sourceEnded = true;
    this.pump();
  }

  /** Delivers what is due now and sets the timer for what is due next. */
  pump(): void {
    if (this.disposed) return;
    const rule = this.link.rule;
    if (rule.blocked) {
      this.link.counters.bytesHeld += this.queuedBytes;
      this.clearQueue();
      this.relieve();
      return;
    }
    const nowMs = performance.now();
    for (let head = this.queue[this.first]; head !== undefined; head = this.queue[this.first]) {
      const dueAtMs = head.arrivedAtMs + (rule.delayMs ?? 0);
      if (dueAtMs > nowMs) {
        this.wakeAt(dueAtMs);
        break;
      }
      const rate = rule.bytesPerSecond;
      if (rate === undefined) {
        this.linkFreeAtMs = nowMs;
        this.deliver(head.chunk);
        this.first += 1;
        continue;
      }
      const startMs = Math.max(this.linkFreeAtMs, dueAtMs);
      const sendable = Math.floor(((nowMs - startMs) * rate) / 1_000);
      if (sendable < 1) {
        const sliceBytes = Math.min(head.chunk.length, Math.max(1, Math.ceil((rate * rateSliceMs) / 1_000)));
        this.wakeAt(startMs + (sliceBytes * 1_000) / rate);
        break;
      }
      const sent = Math.min(sendable, head.chunk.length);
      this.linkFreeAtMs = startMs + (sent * 1_000) / rate;
      this.deliver(head.chunk.subarray(0, sent));
      if (sent === head.chunk.length) this.first += 1;
      else head.chunk = head.chunk.subarray(sent);
    }
    this.compact();
    if (this.first === this.queue.length && this.sourceEnded && !this.destinationEnded) {
      this.destinationEnded = true;
      if (!this.destination.destroyed) this.destination.end();
    }
    this.relieve();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.clearQueue();
  }

  private deliver(chunk: Buffer): void {
    this.queuedBytes -= chunk.length;
    if (this.destination.destroyed || this.destination.writableEnded) return;
    this.destination.write(chunk);
    this.link.counters.bytesForwarded += chunk.length;
  }

  private wakeAt(atMs: number): void {
    if (this.timer !== undefined && this.timerAtMs <= atMs) return;
    clearTimeout(this.timer);
    this.timerAtMs = atMs;
    // Timers may fire a little early against performance.now(); pump() then simply sets the next one.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAtMs = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(1, Math.ceil(atMs - performance.now())),
    );
  }

  private pendingBytes(): number {
    return this.queuedBytes + this.destination.writableLength;
  }

  private relieve(): void {
    if (!this.sourcePaused || this.disposed || this.pendingBytes() >= pendingBytesResume) return;
    this.sourcePaused = false;
    this.source.resume();
  }

  private clearQueue(): void {
    this.queue.length = 0;
    this.first = 0;
    this.queuedBytes = 0;
  }

  /** Drops delivered entries from the front once they are half the array, so shifting stays O(1) amortised. */
  private compact(): void {
    if (this.first === this.queue.length) this.clearQueue();
    else if (this.first > 1_024 && this.first * 2 > this.queue.length) {
      this.queue.splice(0, this.first);
      this.first = 0;
    }
  }
}
