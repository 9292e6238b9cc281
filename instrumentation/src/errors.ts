import { diag, SpanStatusCode, type Span } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE } from './semconv.js';

/**
 * Low-cardinality `error.type` of a thrown value: the HTTP status code when the error carries one
 * (provider SDK errors do), else the error's class name, else `_OTHER` (the semconv fallback).
 */
export function errorType(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '_OTHER';
  const { status } = error as { status?: unknown };
  if (typeof status === 'number' && Number.isInteger(status)) return String(status);
  const name = (error as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name === 'string' && name !== '' && name !== 'Object') return name;
  const ownName = (error as { name?: unknown }).name;
  return typeof ownName === 'string' && ownName !== '' ? ownName : '_OTHER';
}

/** Marks a span failed: status ERROR with the error message, `error.type`, an exception event. */
export function markSpanFailed(span: Span, error: unknown): void {
  guard('marking a span failed', () => {
    const message = error instanceof Error ? error.message : undefined;
    span.setStatus(
      message === undefined
        ? { code: SpanStatusCode.ERROR }
        : { code: SpanStatusCode.ERROR, message },
    );
    span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
    if (error instanceof Error) span.recordException(error);
  });
}

/**
 * Runs a piece of our own bookkeeping so that its failure never reaches the host application:
 * it is reported through `diag` and the caller carries on. Returns undefined on failure.
 */
export function guard<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    diag.error(`routewatch: ${what} failed`, error);
    return undefined;
  }
}
