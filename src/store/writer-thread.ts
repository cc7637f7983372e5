/**
 * Entry point of the writer thread (see ThreadWriter): it owns the writing connection and runs
 * group commit there, answering the main thread by message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from '../core/clock.js';
import type { NodeId } from '../core/ids.js';
import { NodeDatabase } from '../log/database.js';
import { GroupCommit } from '../log/group-commit.js';
import type { WriteRequest, WriteResult } from './store.js';
import { WritePath } from './write-path.js';
import { type FromWriter, serializeError, type ToWriter, type WriterThreadData } from './writer.js';

const data = workerData as WriterThreadData;
const port = parentPort;
if (!port) throw new Error('writer-thread.js runs as a worker thread only');
const send = (message: FromWriter) => port.postMessage(message);

const database = new NodeDatabase(data.file, { shared: true });
const path = new WritePath(database.db, {
  blobsDir: data.blobsDir,
  nodeId: data.nodeId as NodeId,
  clock: systemClock,
  inlineBytesMax: data.inlineBytesMax,
  searchIndexBytesMax: data.searchIndexBytesMax,
});
let failure: Error | undefined;
let syncSeconds = 0;
const group = new GroupCommit<WriteRequest, WriteResult>({
  apply: (batch) => path.applyBatch(batch),
  sync: async () => {
    if (failure) throw failure;
    const started = process.hrtime.bigint();
    try {
      // This thread has nothing else to do meanwhile: sync on it, without a thread-pool hop.
      await database.sync(true);
    } catch (error) {
      failure = error as Error;
      send({ type: 'failed', error: serializeError(error) });
      throw error;
    }
    syncSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  },
  durable: (results) => send({ type: 'durable', results, syncSeconds }),
});

const reply = (id: number, work: () => unknown) => {
  Promise.resolve()
    .then(work)
    .then(
      (value) => send({ type: 'reply', id, value }),
      (error: unknown) => send({ type: 'reply', id, error: serializeError(error) }),
    );
};

port.on('message', (message: ToWriter) => {
  switch (message.type) {
    case 'write':
      reply(message.id, () => group.submit(message.request));
      break;
    case 'blob':
      reply(message.id, async () => {
        path.registerBlob(message.blob);
        await database.sync(true);
      });
      break;
    case 'reindex':
      reply(message.id, () => path.reindex());
      break;
    case 'close':
      void group.close().then(() => {
        database.close();
        send({ type: 'closed' });
        port.close();
      });
      break;
  }
});
