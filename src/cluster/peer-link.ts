import type { RawData, WebSocket } from 'ws';
import type { NodeId } from '../core/ids.js';
import { type Hello, type MemberInfo, type PeerMessage, parseHello, parsePeerMessage } from './messages.js';

/** Largest message on a link: a sync batch is about 1 MiB, a single commit of 10,000 ops a few MB. */
export const linkMessageBytesMax = 32 * 1024 * 1024;
/** Unsent bytes on a link beyond this mean the peer cannot keep up: the link is dropped (anti-entropy repairs). */
const linkBacklogBytesMax = 16 * 1024 * 1024;
/** A peer that has not said hello by then is not a peer. */
export const helloTimeoutMs = 5_000;
/** Messages in one frame at most; a batch holds what one turn of the event loop produced. */
export const messagesPerFrameMax = 10_000;
/**
 * A batch is cut before it passes this many bytes, so that batching never makes a frame larger than
 * the largest single message (a sync batch of about 1 MiB) and keeps far from `linkMessageBytesMax`.
 */
export const batchBytesMax = 1024 * 1024;

export type RefusalReason = 'unauthenticated' | 'malformed' | 'timeout' | 'self' | 'backlog';

export interface LinkEvents {
  hello(link: PeerLink, hello: Hello): void;
  message(link: PeerLink, message: PeerMessage): void;
  refused(link: PeerLink, reason: RefusalReason, detail: string): void;
  closed(link: PeerLink): void;
}

/**
 * One authenticated WebSocket to a peer: the first frame in each direction is a hello, every later
 * one a PeerMessage as JSON, or a JSON array of them in the order they were sent. Messages sent in
 * one turn of the event loop (a batch of applied commits forwarded to an eager peer, the
 * announcements that follow) leave together in one frame at the end of that turn, to a peer whose
 * hello said it reads batches: one write and one wake-up of the peer instead of one per message.
 * Anything that does not parse closes the link (the node keeps serving; the peer may reconnect and
 * try again).
 */
export class PeerLink {
  peer: NodeId | undefined;
  info: MemberInfo | undefined;
  bytesSent = 0;
  bytesReceived = 0;
  /** WebSocket frames: each holds one message or a batch of them. */
  framesSent = 0;
  framesReceived = 0;
  private helloTimer: NodeJS.Timeout | undefined;
  private closedAlready = false;
  /** Messages of this turn of the event loop, as JSON, not yet written. */
  private pending: string[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** The peer's hello said it reads batches; until then (and for older peers) one message per frame. */
  private peerReadsBatches = false;

  constructor(
    readonly socket: WebSocket,
    /** Who opened the connection: when two links to one peer exist, the one the lower id dialed stays. */
    readonly dialer: NodeId,
    private readonly events: LinkEvents,
    private readonly checkHello: (hello: Hello) => string | undefined,
  ) {
    this.helloTimer = setTimeout(() => this.refuse('timeout', 'no hello in time'), helloTimeoutMs);
    socket.on('message', (data: RawData, isBinary: boolean) => this.onData(data, isBinary));
    socket.on('close', () => this.onClose());
    socket.on('error', (error: Error & { code?: string }) => {
      // A frame ws could not read (no mask, reserved bits, an oversized message) is a malformed
      // message as much as bad JSON is: counted and said why. Other errors are the connection's.
      if (error.code?.startsWith('WS_ERR_'))
        this.events.refused(this, 'malformed', `invalid WebSocket frame: ${error.message}`);
      socket.terminate();
    });
  }

  /** Queues a message; it is written at the end of this turn of the event loop, after those queued before it. */
  send(message: PeerMessage | Hello): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount + this.pendingBytes > linkBacklogBytesMax) {
      this.refuse('backlog', 'the peer reads too slowly');
      return;
    }
    const text = JSON.stringify(message);
    this.bytesSent += text.length;
    if (this.pending.length > 0 && this.pendingBytes + text.length > batchBytesMax) this.flush();
    this.pending.push(text);
    this.pendingBytes += text.length;
    // The hello goes at once and alone: the peer reads the first frame as a hello, never a batch.
    if (message.type === 'hello' || this.pending.length >= messagesPerFrameMax) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  close(code = 1000, reason = 'bye'): void {
    this.flush();
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING)
      this.socket.close(code, reason);
    else this.socket.terminate();
  }

  /**
   * Writes the queued messages as one frame: the message itself when it is alone, else an array;
   * to a peer that does not read batches, one frame each.
   */
  private flush(): void {
    this.flushScheduled = false;
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (pending.length === 1 || !this.peerReadsBatches) {
      for (const text of pending) this.socket.send(text);
      this.framesSent += pending.length;
      return;
    }
    this.framesSent += 1;
    this.socket.send(`[${pending.join(',')}]`);
  }

  refuse(reason: RefusalReason, detail: string): void {
    this.events.refused(this, reason, detail);
    this.close(4400, `${reason}: ${detail}`.slice(0, 120));
  }

  private onData(data: RawData, isBinary: boolean): void {
    const length = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    this.bytesReceived += length;
    this.framesReceived += 1;
    let value: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      value = JSON.parse(data.toString());
    } catch {
      this.refuse('malformed', 'a message is not JSON text');
      return;
    }
    try {
      if (this.info === undefined) {
        const hello = parseHello(value);
        const problem = this.checkHello(hello);
        if (problem) {
          this.refuse('unauthenticated', problem);
          return;
        }
        clearTimeout(this.helloTimer);
        this.peer = hello.member.id;
        this.info = hello.member;
        this.peerReadsBatches = hello.batches === true;
        this.events.hello(this, hello);
        return;
      }
      if (!Array.isArray(value)) {
        this.events.message(this, parsePeerMessage(value));
        return;
      }
      if (value.length === 0 || value.length > messagesPerFrameMax)
        throw new Error(`a frame holds 1–${messagesPerFrameMax} messages`);
      // All parsed before any is acted on: a bad message refuses the frame as a whole.
      for (const message of value.map(parsePeerMessage)) {
        // A message earlier in the batch may have closed the link.
        if (this.socket.readyState !== this.socket.OPEN) return;
        this.events.message(this, message);
      }
    } catch (error) {
      this.refuse('malformed', (error as Error).message);
    }
  }

  private onClose(): void {
    clearTimeout(this.helloTimer);
    if (this.closedAlready) return;
    this.closedAlready = true;
    this.events.closed(this);
  }
}
