import { describe, expect, it } from 'vitest';
import {
  StorageError,
  clickHouseErrorCode,
  isRowDataError,
  isStoreUnavailable,
  storageFailure,
} from '../../storage/errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('clickHouseErrorCode', () => {
  it('reads the code @clickhouse/client puts on its error, or the one in the message, through causes', () => {
    expect(
      clickHouseErrorCode(storageFailure('QUERY_FAILED', 'x', withCode('Unknown table', '60'))),
    ).toBe(60);
    expect(
      clickHouseErrorCode(
        new Error('wrapped', { cause: new Error('Code: 117. DB::Exception: bad row') }),
      ),
    ).toBe(117);
    expect(clickHouseErrorCode(withCode('connect refused', 'ECONNREFUSED'))).toBeUndefined();
  });
});

describe('isStoreUnavailable', () => {
  it('is true for a refused or reset connection, a client timeout, a network error code and a closed store', () => {
    expect(
      isStoreUnavailable(storageFailure('INSERT_FAILED', 'x', withCode('connect', 'ECONNREFUSED'))),
    ).toBe(true);
    expect(
      isStoreUnavailable(new Error('x', { cause: withCode('socket hang up', 'ECONNRESET') })),
    ).toBe(true);
    expect(
      isStoreUnavailable(storageFailure('QUERY_FAILED', 'x', new Error('Timeout error.'))),
    ).toBe(true);
    expect(isStoreUnavailable(new Error('Code: 210. DB::Exception: Connection refused'))).toBe(
      true,
    );
    expect(
      isStoreUnavailable(new StorageError('STORE_CLOSED', 'the embedded store is closed')),
    ).toBe(true);
  });

  it('is false for a statement the store refused', () => {
    const refused = storageFailure('INSERT_FAILED', 'x', withCode('Cannot parse input', '27'));
    expect(isStoreUnavailable(refused)).toBe(false);
    expect(isRowDataError(refused)).toBe(true);
    expect(isStoreUnavailable(withCode('Authentication failed', '516'))).toBe(false);
    expect(isStoreUnavailable('not an error')).toBe(false);
  });
});
