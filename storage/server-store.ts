import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import type { z } from 'zod';
import { StorageError, storageFailure } from './errors.js';
import { INSERT_SETTINGS, OUTPUT_SETTINGS, assertIdentifier } from './store.js';
import type { InsertOptions, QueryParams, Store } from './store.js';
import { parseRows } from './rows.js';

export interface ServerStoreOptions {
  /** e.g. http://user:password@clickhouse:8123/routewatch */
  url: string;
  requestTimeoutMs?: number;
  /**
   * A pre-built connection instead of HTTP. The tests pass chDB's implementation of the client's
   * connection contract, so this driver's code runs against the real engine without a server.
   */
  connection?: ClientConfig['connection'];
}

type ClientConfig = NonNullable<Parameters<typeof createClient>[0]>;

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
      clickhouse_settings: { ...OUTPUT_SETTINGS, wait_end_of_query: 1 },
      ...(options.connection ? { connection: options.connection } : {}),
    });
  }

  async exec(sql: string, params: QueryParams = {}): Promise<void> {
    try {
      await this.#client.command({ query: sql, query_params: params });
    } catch (error) {
      throw storageFailure('QUERY_FAILED', 'ClickHouse statement failed', error);
    }
  }

  async insertJsonEachRow(
    table: string,
    body: Uint8Array,
    options: InsertOptions = {},
  ): Promise<void> {
    if (body.byteLength === 0) return;
    try {
      await this.#client.insert({
        table: assertIdentifier(table),
        values: Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]),
        format: 'JSONEachRow',
        clickhouse_settings: {
          ...INSERT_SETTINGS,
          ...(options.deduplicationToken
            ? { insert_deduplication_token: options.deduplicationToken }
            : {}),
        },
      });
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

  async close(): Promise<void> {
    await this.#client.close();
  }
}
