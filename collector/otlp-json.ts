import { z } from 'zod';

/**
 * OTLP/HTTP JSON trace requests (ExportTraceServiceRequest), as sent by
 * @opentelemetry/exporter-trace-otlp-http and other SDKs: lowerCamelCase keys, hex ids, integer
 * enums, 64-bit integers as decimal strings or JSON numbers. Unknown fields are ignored.
 */

const DIGITS = /^-?\d+$/;
/** A 64-bit integer: a decimal string, or a JSON number (exact when it was quoted before parsing). */
const int64 = z
  .union([z.string().regex(DIGITS, 'expected a decimal integer'), z.number().int()])
  .transform(String);
const uint64 = z
  .union([
    z.string().regex(/^\d+$/, 'expected a non-negative decimal integer'),
    z.number().int().nonnegative(),
  ])
  .transform(String);

export type AnyValue =
  | { kind: 'string'; value: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: string }
  | { kind: 'double'; value: number }
  | { kind: 'array'; value: AnyValue[] }
  | { kind: 'kvlist'; value: KeyValue[] }
  | { kind: 'bytes'; value: string }
  | { kind: 'empty' };
export interface KeyValue {
  key: string;
  value: AnyValue;
}

const anyValueSchema: z.ZodType<AnyValue> = z.lazy(() =>
  z
    .object({
      stringValue: z.string().optional(),
      boolValue: z.boolean().optional(),
      intValue: int64.optional(),
      doubleValue: z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).optional(),
      arrayValue: z.object({ values: z.array(anyValueSchema).optional() }).optional(),
      kvlistValue: z.object({ values: z.array(keyValueSchema).optional() }).optional(),
      bytesValue: z.string().optional(),
    })
    .transform((v): AnyValue => {
      if (v.stringValue !== undefined) return { kind: 'string', value: v.stringValue };
      if (v.boolValue !== undefined) return { kind: 'bool', value: v.boolValue };
      if (v.intValue !== undefined) return { kind: 'int', value: v.intValue };
      if (v.doubleValue !== undefined) return { kind: 'double', value: Number(v.doubleValue) };
      if (v.arrayValue !== undefined) return { kind: 'array', value: v.arrayValue.values ?? [] };
      if (v.kvlistValue !== undefined) return { kind: 'kvlist', value: v.kvlistValue.values ?? [] };
      if (v.bytesValue !== undefined) return { kind: 'bytes', value: v.bytesValue };
      return { kind: 'empty' };
    }),
);

const keyValueSchema: z.ZodType<KeyValue> = z.lazy(() =>
  z.object({ key: z.string(), value: anyValueSchema.optional() }).transform((kv) => ({
    key: kv.key,
    value: kv.value ?? { kind: 'empty' as const },
  })),
);

const attributes = z
  .array(keyValueSchema)
  .optional()
  .transform((a) => a ?? []);

function hexId(bytes: number) {
  const pattern = new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);
  const zero = '0'.repeat(bytes * 2);
  return z
    .string()
    .regex(pattern, `expected ${bytes * 2} hex characters (${bytes} bytes)`)
    .transform((s) => s.toLowerCase())
    .refine((s) => s !== zero, 'an all-zero id is invalid');
}

const spanSchema = z.object({
  traceId: hexId(16),
  spanId: hexId(8),
  parentSpanId: z
    .union([
      z.literal(''),
      z.string().regex(/^[0-9a-fA-F]{16}$/, 'expected 16 hex characters (8 bytes)'),
    ])
    .optional()
    .transform((s) => (s ? s.toLowerCase() : '')),
  name: z.string().optional().default(''),
  kind: z.number().int().min(0).max(5).optional().default(0),
  startTimeUnixNano: uint64,
  endTimeUnixNano: uint64,
  attributes,
  status: z
    .object({
      code: z.number().int().min(0).max(2).optional().default(0),
      message: z.string().optional().default(''),
    })
    .optional()
    .transform((s) => s ?? { code: 0, message: '' }),
});

const requestSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes }).optional(),
        scopeSpans: z
          .array(
            z.object({
              scope: z
                .object({ name: z.string().optional(), version: z.string().optional() })
                .optional(),
              spans: z.array(spanSchema).optional().default([]),
            }),
          )
          .optional()
          .default([]),
      }),
    )
    .optional()
    .default([]),
});

export type OtlpSpan = z.output<typeof spanSchema>;
export type ExportTraceRequest = z.output<typeof requestSchema>;

export class OtlpDecodeError extends Error {
  readonly code = 'OTLP_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtlpDecodeError';
  }
}

/**
 * JSON numbers above 2^53 lose precision in JSON.parse. Before parsing, wrap every integer
 * literal of 16 or more digits that stands outside a string in quotes, so nanosecond timestamps
 * and int64 attribute values survive exactly. Strings are matched first so their contents are
 * never touched.
 */
const LONG_INTEGER_OR_STRING = /"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d{16,}(?![\d.eE])/g;
const HAS_LONG_INTEGER = /\d{16}/;

export function parseJsonPreservingInt64(text: string): unknown {
  const safe = HAS_LONG_INTEGER.test(text)
    ? text.replace(LONG_INTEGER_OR_STRING, (match) =>
        match.charCodeAt(0) === 34 ? match : `"${match}"`,
      )
    : text;
  return JSON.parse(safe);
}

/** Decodes an OTLP/HTTP JSON body. Throws OtlpDecodeError with a message naming the bad field. */
export function decodeTraceRequestJson(text: string): ExportTraceRequest {
  let json: unknown;
  try {
    json = parseJsonPreservingInt64(text);
  } catch (error) {
    throw new OtlpDecodeError(`the body is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return validateTraceRequest(json);
}

/**
 * Checks a request in the OTLP/JSON object shape (the protobuf decoder produces the same shape),
 * so both encodings pass through one set of rules.
 */
export function validateTraceRequest(json: unknown): ExportTraceRequest {
  const parsed = requestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new OtlpDecodeError(
      `the body is not an OTLP ExportTraceServiceRequest: ${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}` +
        (parsed.error.issues.length > 1
          ? ` (and ${parsed.error.issues.length - 1} more problems)`
          : ''),
      { cause: parsed.error },
    );
  }
  return parsed.data;
}
