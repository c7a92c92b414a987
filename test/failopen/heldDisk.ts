// A slow or failing disk for the fail-open journal (JournalOptions.write): every
// write is held until the test releases it, then really written to the file,
// or failed with EIO.
import { write as fsWrite } from 'node:fs';
import type { WriteFn } from '../../src/failopen/journal.js';

export interface HeldDisk {
  readonly write: WriteFn;
  /** What each write call was asked to write, in order. */
  readonly calls: Buffer[];
  /** Completes every held write: on the file, or (fail) with EIO and nothing written. */
  release(fail?: boolean): void;
}

export function heldDisk(): HeldDisk {
  const held: Array<(fail: boolean) => void> = [];
  const calls: Buffer[] = [];
  return {
    calls,
    write: (fd, buffer, offset, length, callback) => {
      calls.push(buffer.subarray(offset, offset + length));
      held.push((fail) => {
        if (fail) callback(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }), 0);
        else fsWrite(fd, buffer, offset, length, null, callback);
      });
    },
    release(fail = false) {
      for (const f of held.splice(0)) f(fail);
    },
  };
}
