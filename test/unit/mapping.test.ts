import { describe, expect, it } from 'vitest';
import { compileMapping, parseMappingFile } from '../../collector/mapping.js';
import type { MappedSpan } from '../../collector/mapping.js';
import { SettingsFileError } from '../../collector/settings-file.js';

const span = (
  attributes: Record<string, string>,
  resource: Record<string, string> = {},
): MappedSpan => ({
  name: 'x',
  parentSpanId: '',
  attributes,
  resource,
});

describe('parseMappingFile', () => {
  it('reads the documented example', () => {
    const rules = parseMappingFile(`
fields:
  cohort:
    - attribute: traceloop.association.properties.cohort
    - resource: service.namespace
  outcome:
    - attribute: langfuse.trace.metadata.outcome
      values: { resolved: success, handed_over: escalated }
task_spans:
  - attribute: traceloop.workflow.name
`);
    expect(rules.fields.cohort).toHaveLength(2);
    expect(rules.task_spans).toEqual([{ attribute: 'traceloop.workflow.name' }]);
  });

  it.each([
    [
      'fields: { cohort: [ { attribute: a, resource: b } ] }',
      /fields\.cohort\.0: give exactly one/,
    ],
    ['fields: { cohort: [ {} ] }', /give exactly one/],
    ['fields: { cohort: [ { attribute: metadata, json: "a..b" } ] }', /json: a dot path of keys/],
    ['fields: { cohrt: [ { attribute: a } ] }', /cohrt/],
    [
      'fields: { route: [ { attribute: a, pattern: "(" } ] }',
      /fields\.route\.0\.pattern: not a valid regular expression/,
    ],
    ['task_spans: [ { equals: x } ]', /task_spans\.0: a condition needs/],
    ['fields: { cohort: [] }', /fields\.cohort/],
    [
      'task_spans: [ { span_name: foo, matches: "a+" } ]',
      /task_spans\.0: `equals` and `matches` test a value: give the `attribute` or `resource`/,
    ],
    [
      'fields: { outcome: [ { attribute: o, values: { ok: sucess } } ] }',
      /fields\.outcome\.0\.values\.ok: "sucess" is not an outcome: use one of success, failure/,
    ],
  ])('refuses %j naming the place', (text, message) => {
    expect(() => parseMappingFile(text)).toThrow(SettingsFileError);
    expect(() => parseMappingFile(text)).toThrow(message);
  });

  it("takes '' as an outcome's new name: no outcome yet", () => {
    const rules = parseMappingFile(
      "fields: { outcome: [ { attribute: o, values: { pending: '', ok: success } } ] }",
    );
    expect(rules.fields.outcome?.[0]?.values).toEqual({ pending: '', ok: 'success' });
  });
});

describe('compileMapping', () => {
  it('takes the first source with a value, reading inside JSON and through a pattern', () => {
    const mapping = compileMapping(
      parseMappingFile(`
fields:
  cohort:
    - attribute: missing
    - attribute: metadata
      json: routing.cohort
    - attribute: fallback
  route:
    - attribute: gen_ai.request.model
      pattern: "^gpt-4o-(mini)"
      values: { mini: small }
`),
    );
    expect(mapping.active).toBe(true);
    expect(
      mapping.derive(
        span({
          metadata: '{"routing":{"cohort":"faq"}}',
          fallback: 'f',
          'gen_ai.request.model': 'gpt-4o-mini',
        }),
      ),
    ).toEqual({ cohort: 'faq', route: 'small' });
    expect(
      mapping.derive(
        span({ metadata: 'not json', fallback: 'f', 'gen_ai.request.model': 'gpt-4o' }),
      ),
    ).toEqual({
      cohort: 'f',
    });
  });

  it('keeps a value that names an inherited property, not the property', () => {
    const mapping = compileMapping(
      parseMappingFile(`
fields:
  task_id:
    - attribute: session.id
      values: { s1: renamed }
  cohort:
    - attribute: app.cohort
      values: { faq: faq-v2 }
`),
    );
    for (const value of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(mapping.derive(span({ 'session.id': value, 'app.cohort': value }))).toEqual({
        task_id: value,
        cohort: value,
      });
    }
    expect(mapping.derive(span({ 'session.id': 's1', 'app.cohort': 'faq' }))).toEqual({
      task_id: 'renamed',
      cohort: 'faq-v2',
    });
  });

  it('reads an outcome in another case or with spaces around it as that outcome', () => {
    // Review audit-C F4: `SUCCESS` and "success " were stored as unknown without a word.
    const mapping = compileMapping(
      parseMappingFile(`
fields:
  outcome:
    - attribute: app.outcome
      values: { resolved: success, Resolved: success }
  cohort:
    - attribute: app.cohort
`),
    );
    const outcome = (value: string) =>
      mapping.derive(span({ 'app.outcome': value, 'app.cohort': value })).outcome;
    expect(outcome('SUCCESS')).toBe('success');
    expect(outcome('success ')).toBe('success');
    expect(outcome(' Failure')).toBe('failure');
    expect(outcome('resolved')).toBe('success');
    expect(outcome('Resolved')).toBe('success');
    // Other values are kept as sent (stored as unknown), and other fields are not touched.
    expect(outcome('RESOLVED')).toBe('RESOLVED');
    expect(mapping.derive(span({ 'app.cohort': 'FAQ ' })).cohort).toBe('FAQ ');
  });

  it('matches task spans on every part of a condition', () => {
    const mapping = compileMapping(
      parseMappingFile(`
task_spans:
  - attribute: ai.operationId
    equals: ai.generateText
    root: true
  - resource: service.name
    matches: "^agent-"
    span_name: run
`),
    );
    expect(mapping.isTaskSpan(span({ 'ai.operationId': 'ai.generateText' }))).toBe(true);
    expect(
      mapping.isTaskSpan({ ...span({ 'ai.operationId': 'ai.generateText' }), parentSpanId: 'ab' }),
    ).toBe(false);
    expect(mapping.isTaskSpan({ ...span({}, { 'service.name': 'agent-7' }), name: 'run' })).toBe(
      true,
    );
    expect(mapping.isTaskSpan({ ...span({}, { 'service.name': 'web' }), name: 'run' })).toBe(false);
  });

  it('is inactive for an empty file', () => {
    expect(compileMapping(parseMappingFile('')).active).toBe(false);
  });
});
