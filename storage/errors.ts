/** Errors raised by the storage layer. Each carries a stable `code`; the low-level error is the `cause`. */
export class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

export class MigrationError extends StorageError {
  readonly migration: string;
  constructor(migration: string, message: string, options?: { cause?: unknown }) {
    super('MIGRATION_FAILED', message, options);
    this.name = 'MigrationError';
    this.migration = migration;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Wraps a driver error: `what` says what failed, the engine's message follows, the error is the cause. */
export function storageFailure(code: string, what: string, error: unknown): StorageError {
  return new StorageError(code, `${what}: ${errorMessage(error)}`, { cause: error });
}
