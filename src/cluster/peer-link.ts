import type { RawData, WebSocket } from 'ws';
import type { NodeId } from '../core/ids.js';
import { type Hello, type MemberInfo, type PeerMessage, parseHello, parsePeerMessage } from './messages.js';

/** Largest message on a link: a sync batch is about 1 MiB, a single commit of 10,000 ops a few MB. */
export const linkMessageBytesMax = 32 * 1024 * 1024;
/** Unsent bytes on a link beyond this mean the peer cannot keep up: the link is dropped (anti-entropy repairs). */
const linkBacklogBytesMax = 16 * 1024 * 1024;
/** A peer that has not said hello by then is not a peer. */
export const helloTimeoutMs = 5_000;

export type RefusalReason = 'unauthenticated' | 'malformed' | 'timeout' | 'self' | 'backlog';

export interface LinkEvents {
  hello(link: PeerLink, hello: Hello): void;
  message(link: PeerLink, message: PeerMessage): void;
  refused(link: PeerLink, reason: RefusalReason, detail: string): void;
  closed(link: PeerLink): void;
}

/**
 * One authenticated WebSocket to a peer: the first message in each direction is a hello, every
 * later one a PeerMessage as JSON. Anything that does not parse closes the link (the node keeps
 * serving; the peer may reconnect and try again).
 */
export class PeerLink {
  peer: NodeId | undefined;
  info: MemberInfo | undefined;
  bytesSent = 0;
  bytesReceived = 0;
  private helloTimer: NodeJS.Timeout | undefined;
  private closedAlready = false;

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
    socket.on('error', () => socket.terminate());
  }

  send(message: PeerMessage | Hello): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > linkBacklogBytesMax) {
      this.refuse('backlog', 'the peer reads too slowly');
      return;
    }
    const text = JSON.stringify(message);
    this.bytesSent += text.length;
    this.socket.send(text);
  }

  close(code = 1000, reason = 'bye'): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING)
      this.socket.close(code, reason);
    else this.socket.terminate();
  }

  refuse(reason: RefusalReason, detail: string): void {
    this.events.refused(this, reason, detail);
    this.close(4400, `${reason}: ${detail}`.slice(0, 120));
  }

  private onData(data: RawData, isBinary: boolean): void {
    const length = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    this.bytesReceived += length;
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
        this.events.hello(this, hello);
        return;
      }
      this.events.message(this, parsePeerMessage(value));
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
