import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { z } from 'zod';
import { StorageError, storageFailure } from './errors.js';
import {
  INSERT_SETTINGS,
  OUTPUT_SETTINGS,
  assertIdentifier,
  insertFormat,
  readOnlySettings,
  resultTooLarge,
} from './store.js';
import type { InsertOptions, QueryParams, ReadOnlyLimits, ReadOnlyResult, Store } from './store.js';
import { parseReadOnlyResult, parseRows } from './rows.js';
import { checkedReadOnlySql } from './read-only-sql.js';

export interface ServerStoreOptions {
  /** e.g. http://user:password@clickhouse:8123/routewatch */
  url: string;
  requestTimeoutMs?: number;
}

/** The server driver: a ClickHouse server over HTTP through the official client. */
export class ServerStore implements Store {
  readonly driver = 'server' as const;
  readonly location: string;
  readonly #client: ClickHouseClient;

  constructor(options: ServerStoreOptions) {
    const url = new URL(options.url);
    this.location = `${url.protocol}//${url.host}${url.pathname}`;
    this.#client = createClient({
      url: options.url,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      // wait_end_of_query: the server answers after the statement finished, so a failure arrives
      // as an HTTP error with its code instead of in the middle of a 200 body. On every request,
      // not only the span and alert inserts, so that the `INSERT … VALUES` and `INSERT … SELECT`
      // statements (rollup state, the repair, migrations) are stored when they answer too:
      // async_insert = 0 on servers where it is on by default (26.2 and later, ClickHouse Cloud),
      // and distributed_foreground_insert = 1 into a cluster's Distributed tables
      // (ROUTEWATCH_CLICKHOUSE_CLUSTER), which answer once every shard has the rows, not once
      // they are queued on the node spoken to (no effect on other tables).
      clickhouse_settings: {
        ...OUTPUT_SETTINGS,
        wait_end_of_query: 1,
        async_insert: 0,
        distributed_foreground_insert: 1,
      },
      // Every failure reaches the caller as a StorageError, which decides whether to log it;
      // the client's own log would print each one to stderr a second time.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async exec(sql: string, params: QueryParams = {}): Promise<void> {
    try {
      await this.#client.command({ query: sql, query_params: params });
    } catch (error) {
      throw storageFailure('QUERY_FAILED', 'ClickHouse statement failed', error);
    }
  }

  /**
   * Sends the bytes (JSONEachRow unless `options.format` says otherwise) as the request body, untouched. `client.insert` cannot do that:
   * for JSON formats it wants objects and JSON-encodes every chunk of an object-mode stream (a
   * Buffer became `{"type":"Buffer","data":[…]}`), and it refuses a byte stream. `exec` with
   * `values` puts the statement in the URL and streams the bytes as they are.
   */
  async insertJsonEachRow(
    table: string,
    body: Uint8Array,
    options: InsertOptions = {},
  ): Promise<void> {
    if (body.byteLength === 0) return;
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const columns = options.columns ? ` (${options.columns.map(assertIdentifier).join(', ')})` : '';
    try {
      const result = await this.#client.exec({
        query: `INSERT INTO ${assertIdentifier(table)}${columns} FORMAT ${insertFormat(options)}`,
        values: Readable.from([bytes], { objectMode: false }),
        clickhouse_settings: {
          ...INSERT_SETTINGS,
          ...(options.deduplicationToken
            ? { insert_deduplication_token: options.deduplicationToken }
            : {}),
        },
      });
      // The socket goes back to the pool only once the (empty) response has been read.
      for await (const chunk of result.stream) void chunk;
    } catch (error) {
      throw storageFailure('INSERT_FAILED', `insert into ${table} failed`, error);
    }
  }

  async query<T>(sql: string, params: QueryParams, row: z.ZodType<T>): Promise<T[]> {
    try {
      const result = await this.#client.query({
        query: sql,
        query_params: params,
        format: 'JSONEachRow',
      });
      return parseRows(await result.text(), row);
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw storageFailure('QUERY_FAILED', 'ClickHouse query failed', error);
    }
  }

  /**
   * The settings travel with the request and apply to it alone; the server checks them against
   * the user's profile before applying them together, so `readonly = 1` does not block the
   * others. A server refuses a body with several statements by itself.
   */
  async queryReadOnly(sql: string, limits: ReadOnlyLimits): Promise<ReadOnlyResult> {
    const checked = await checkedReadOnlySql(this, sql);
    try {
      // Read as it arrives, and given up past the size limit: the server's max_result_bytes
      // counts from a result's second block on, and an answer read whole before its size is
      // known would be held in this process (the collector's) however large. The query, which
      // has no FORMAT clause of its own (checkedReadOnlySql), goes in the body.
      const result = await this.#client.exec({
        query: `${checked}\nFORMAT JSONCompact`,
        clickhouse_settings: readOnlySettings(limits),
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of result.stream as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > limits.maxResultBytes) {
          result.stream.destroy();
          throw resultTooLarge(size, limits.maxResultBytes);
        }
        chunks.push(chunk);
      }
      return parseReadOnlyResult(Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw storageFailure('QUERY_FAILED', 'ClickHouse query failed', error);
    }
  }

  /** Checks that the server answers a query with these credentials (`/ping` alone does not check them). */
  async ping(): Promise<void> {
    const result = await this.#client.ping({ select: true });
    if (!result.success) {
      throw storageFailure('UNAVAILABLE', 'ClickHouse server did not answer', result.error);
    }
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
