import { z } from 'zod';
import { parseSettingsFile } from './settings-file.js';

/**
 * The mapping file (ROUTEWATCH_MAPPING): derives routing fields (task id, cohort, route, attempt,
 * outcome, policy version) from attributes other tools already send (Langfuse trace metadata,
 * Vercel AI SDK telemetry metadata, OpenInference metadata, OpenLLMetry association properties,
 * resource attributes), so a team on one of them gets cohorts without re-tagging its code.
 *
 * The file is plain data (validated at start, sent to the ingest threads as is); `compileMapping`
 * turns it into matchers once per thread. A span's own `routewatch.*` attributes always win: the
 * mapping fills only what the span leaves empty. See docs/mapping.md.
 */

export const MAPPED_FIELDS = [
  'task_id',
  'cohort',
  'route',
  'attempt',
  'outcome',
  'outcome_reason',
  'policy_version',
] as const;
export type MappedField = (typeof MAPPED_FIELDS)[number];

/** The outcomes a task can end with (DESIGN's task model); any other value is stored as unknown. */
export const OUTCOMES = ['success', 'failure', 'escalated', 'abandoned', 'unknown'] as const;

const name = z.string().trim().min(1);

/** A regular expression, checked when the file is read (not when the first span arrives). */
const regex = z.string().refine(
  (source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

const sourceSchema = z
  .strictObject({
    /** A span attribute… */
    attribute: name.optional(),
    /** …or a resource attribute. */
    resource: name.optional(),
    /** A key (dot path) inside a JSON object the attribute holds (OpenInference `metadata`). */
    json: name
      .refine((path) => path.split('.').every((key) => key !== ''), {
        message: 'a dot path of keys, none empty (routing.cohort)',
      })
      .optional(),
    /** A regular expression: its first group (or the whole match) is the value. */
    pattern: regex.optional(),
    /** Values renamed: `{ resolved: success }`. A value not listed is kept as it is. */
    values: z.record(z.string(), z.string()).optional(),
  })
  .refine((s) => (s.attribute === undefined) !== (s.resource === undefined), {
    message: 'give exactly one of `attribute` or `resource`',
  });

const conditionSchema = z
  .strictObject({
    attribute: name.optional(),
    resource: name.optional(),
    /** The value equals this (without it: the attribute is present and not empty). */
    equals: z.string().optional(),
    /** The value matches this regular expression. */
    matches: regex.optional(),
    /** The span's name equals this. */
    span_name: z.string().optional(),
    /** The span has no parent (true) or has one (false). */
    root: z.boolean().optional(),
  })
  .refine((c) => !(c.attribute !== undefined && c.resource !== undefined), {
    message: 'give at most one of `attribute` or `resource`',
  })
  .refine(
    (c) =>
      (c.equals === undefined && c.matches === undefined) ||
      c.attribute !== undefined ||
      c.resource !== undefined,
    { message: '`equals` and `matches` test a value: give the `attribute` or `resource` it is in' },
  )
  .refine(
    (c) =>
      c.attribute !== undefined ||
      c.resource !== undefined ||
      c.span_name !== undefined ||
      c.root !== undefined,
    { message: 'a condition needs `attribute`, `resource`, `span_name` or `root`' },
  );

export const mappingFileSchema = z.strictObject({
  fields: z
    .strictObject(
      Object.fromEntries(
        MAPPED_FIELDS.map((f) => [f, z.array(sourceSchema).min(1).optional()]),
      ) as Record<MappedField, z.ZodOptional<z.ZodArray<typeof sourceSchema>>>,
    )
    .default({})
    .superRefine((fields, ctx) => {
      // An outcome renamed to a value that is no outcome would store every such task as unknown.
      fields.outcome?.forEach((source, i) => {
        for (const [from, to] of Object.entries(source.values ?? {})) {
          // '' is "no outcome yet": the task stays open, and the next source is not tried.
          if (to === '' || (OUTCOMES as readonly string[]).includes(to)) continue;
          ctx.addIssue({
            code: 'custom',
            path: ['outcome', i, 'values', from],
            message: `"${to}" is not an outcome: use one of ${OUTCOMES.join(', ')} (or '' for none yet)`,
          });
        }
      });
    }),
  /** Spans that stand for a whole task (outcome and cohort read from them): any condition. */
  task_spans: z.array(conditionSchema).default([]),
});

/** The mapping file as validated data: what crosses into an ingest thread. */
export type MappingRules = z.output<typeof mappingFileSchema>;

export type MappingSource = z.output<typeof sourceSchema>;
export type MappingCondition = z.output<typeof conditionSchema>;

export const NO_MAPPING: MappingRules = { fields: {}, task_spans: [] };

/** Parses the text of a mapping file; throws SettingsFileError. */
export function parseMappingFile(text: string): MappingRules {
  return parseSettingsFile(text, mappingFileSchema);
}

/** What a compiled mapping reads a span through. */
export interface MappedSpan {
  name: string;
  parentSpanId: string;
  attributes: Record<string, string>;
  resource: Record<string, string>;
}

/** A mapping compiled for one thread: pure functions of a span. */
export interface Mapping {
  /** Whether the file maps anything (otherwise normalizing skips it entirely). */
  readonly active: boolean;
  /** The value each mapped field takes for this span (fields without a value are absent). */
  derive(span: MappedSpan): Partial<Record<MappedField, string>>;
  /** Whether the span stands for a whole task (a `task_spans` condition holds). */
  isTaskSpan(span: MappedSpan): boolean;
  /**
   * The span attributes `isTaskSpan` reads: a decoder may give it a map of these alone (for a span
   * it would otherwise skip without decoding its attributes).
   */
  readonly taskSpanAttributes: readonly string[];
}

type Reader = (span: MappedSpan) => string | undefined;

function jsonPath(text: string, path: string[]): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  for (const key of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** An outcome written another way (`SUCCESS`, `"success "`) as the outcome it names. */
function canonicalOutcome(value: string): string {
  const plain = value.trim().toLowerCase();
  return (OUTCOMES as readonly string[]).includes(plain) ? plain : value;
}

function compileSource(source: MappingSource, field: MappedField): Reader {
  const key = (source.attribute ?? source.resource)!;
  const fromResource = source.resource !== undefined;
  const path = source.json?.split('.');
  const pattern = source.pattern === undefined ? undefined : new RegExp(source.pattern);
  const renames = source.values;
  return (span) => {
    let value = (fromResource ? span.resource : span.attributes)[key];
    if (value === undefined || value === '') return undefined;
    if (path) value = jsonPath(value, path);
    if (value !== undefined && pattern) {
      const match = pattern.exec(value);
      value = match ? (match[1] ?? match[0]) : undefined;
    }
    if (value === undefined || value === '') return undefined;
    // Own keys only: a value such as `constructor` or `__proto__` is kept as sent.
    if (renames && Object.hasOwn(renames, value)) return renames[value]!;
    // An outcome in other case or with spaces around it is that outcome, not `unknown`.
    return field === 'outcome' ? canonicalOutcome(value) : value;
  };
}

function compileCondition(condition: MappingCondition): (span: MappedSpan) => boolean {
  const key = condition.attribute ?? condition.resource;
  const fromResource = condition.resource !== undefined;
  const pattern = condition.matches === undefined ? undefined : new RegExp(condition.matches);
  return (span) => {
    if (condition.root !== undefined && (span.parentSpanId === '') !== condition.root) return false;
    if (condition.span_name !== undefined && span.name !== condition.span_name) return false;
    if (key === undefined) return true;
    const value = (fromResource ? span.resource : span.attributes)[key];
    if (value === undefined || value === '') return false;
    if (condition.equals !== undefined && value !== condition.equals) return false;
    if (pattern && !pattern.test(value)) return false;
    return true;
  };
}

/** Compiles validated mapping rules into matchers (once per ingest thread). */
export function compileMapping(rules: MappingRules): Mapping {
  const fields: [MappedField, Reader[]][] = [];
  for (const field of MAPPED_FIELDS) {
    const sources = rules.fields[field];
    if (sources && sources.length > 0)
      fields.push([field, sources.map((source) => compileSource(source, field))]);
  }
  const conditions = rules.task_spans.map(compileCondition);
  const taskSpanAttributes = [
    ...new Set(rules.task_spans.flatMap((c) => (c.attribute === undefined ? [] : [c.attribute]))),
  ];
  return {
    active: fields.length > 0 || conditions.length > 0,
    taskSpanAttributes,
    derive(span) {
      const derived: Partial<Record<MappedField, string>> = {};
      for (const [field, readers] of fields) {
        for (const read of readers) {
          const value = read(span);
          if (value !== undefined) {
            derived[field] = value;
            break;
          }
        }
      }
      return derived;
    },
    isTaskSpan(span) {
      return conditions.some((holds) => holds(span));
    },
  };
}
