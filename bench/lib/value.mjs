import { randomBytes } from 'node:crypto';

/** The issue asks for 1 KB values. */
export const valueBytes = 1024;

const base = randomBytes(valueBytes);

/**
 * A 1 KB value unique to (client, sequence). Strata addresses blobs by content, so writing the same
 * bytes again would skip the blob work; random filler keeps it from compressing to nothing.
 */
export function valueFor(client, sequence) {
  const value = Buffer.from(base);
  value.writeUInt32BE(client, 0);
  value.writeDoubleBE(sequence, 4);
  value.writeDoubleBE(performance.now(), 12);
  return value;
}
