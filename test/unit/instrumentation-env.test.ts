import { describe, expect, it } from 'vitest';
import {
  BATCH_DEFAULTS,
  readBatchSettings,
  readRoutewatchEnv,
} from '../../instrumentation/src/config.js';
import { DEFAULT_TRACES_ENDPOINT, resolveTracesEndpoint } from '../../instrumentation/src/sdk.js';

// The instrumentation's configuration from the environment: parsed strictly, never throwing.

describe('readRoutewatchEnv', () => {
  it('parses the ROUTEWATCH_* and protocol variables, case-insensitively', () => {
    const warnings: string[] = [];
    expect(
      readRoutewatchEnv(
        {
          ROUTEWATCH_CAPTURE_CONTENT: 'TRUE',
          ROUTEWATCH_SDK_CAPTURE: 'off',
          ROUTEWATCH_STREAM_USAGE: 'on',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        },
        (message) => warnings.push(message),
      ),
    ).toEqual({
      captureContent: true,
      sdkCapture: false,
      requestStreamUsage: true,
      protocol: 'http/protobuf',
    });
    expect(warnings).toEqual([]);
  });

  it('warns with the variable name and accepted values on a bad value, and uses the default', () => {
    const warnings: string[] = [];
    const env = readRoutewatchEnv(
      {
        ROUTEWATCH_CAPTURE_CONTENT: 'yes',
        ROUTEWATCH_SDK_CAPTURE: '',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      },
      (message) => warnings.push(message),
    );
    expect(env).toEqual({
      captureContent: undefined,
      sdkCapture: undefined,
      requestStreamUsage: undefined,
      protocol: undefined,
    });
    expect(warnings).toEqual([
      'ROUTEWATCH_CAPTURE_CONTENT="yes" is not valid (accepted: true, false); using false',
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc" is not supported (accepted: http/json, http/protobuf); exporting with http/json',
    ]);
  });

  it('accepts true/false for the on/off variables and trims blanks', () => {
    const warnings: string[] = [];
    expect(
      readRoutewatchEnv(
        {
          ROUTEWATCH_SDK_CAPTURE: ' true ',
          ROUTEWATCH_STREAM_USAGE: 'OFF',
          ROUTEWATCH_CAPTURE_CONTENT: ' ',
        },
        (message) => warnings.push(message),
      ),
    ).toEqual({
      captureContent: undefined,
      sdkCapture: true,
      requestStreamUsage: false,
      protocol: undefined,
    });
    expect(warnings).toEqual([]);
  });
});

// Regression of A3 in the instrumentation review: the SDK reads OTEL_BSP_* unchecked, and a batch
// size of 0 made its flush loop forever.
describe('readBatchSettings', () => {
  it('takes valid OTEL_BSP_* values', () => {
    const warnings: string[] = [];
    expect(
      readBatchSettings(
        {
          OTEL_BSP_MAX_QUEUE_SIZE: '100',
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: ' 10 ',
          OTEL_BSP_SCHEDULE_DELAY: '0',
          OTEL_BSP_EXPORT_TIMEOUT: '2000',
        },
        (message) => warnings.push(message),
      ),
    ).toEqual({
      maxQueueSize: 100,
      maxExportBatchSize: 10,
      scheduledDelayMillis: 0,
      exportTimeoutMillis: 2000,
    });
    expect(warnings).toEqual([]);
  });

  it.each([
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', '0'],
    ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', '-5'],
    ['OTEL_BSP_MAX_QUEUE_SIZE', '1.5'],
    ['OTEL_BSP_MAX_QUEUE_SIZE', 'lots'],
    ['OTEL_BSP_SCHEDULE_DELAY', 'Infinity'],
    ['OTEL_BSP_EXPORT_TIMEOUT', '0'],
    ['OTEL_BSP_EXPORT_TIMEOUT', '99999999999'],
  ])('ignores %s=%s with a warning naming it, and keeps the defaults', (name, value) => {
    const warnings: string[] = [];
    expect(readBatchSettings({ [name]: value }, (message) => warnings.push(message))).toEqual(
      BATCH_DEFAULTS,
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${name}=${JSON.stringify(value)} is not valid`);
  });

  it('lowers a batch size above the queue size to it', () => {
    const warnings: string[] = [];
    const settings = readBatchSettings(
      { OTEL_BSP_MAX_QUEUE_SIZE: '64', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512' },
      (message) => warnings.push(message),
    );
    expect(settings).toMatchObject({ maxQueueSize: 64, maxExportBatchSize: 64 });
    expect(warnings).toHaveLength(1);
  });
});

describe('resolveTracesEndpoint', () => {
  it('prefers the option, then the traces variable as given, then the base variable + /v1/traces', () => {
    const env = {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:1/custom',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2/',
    };
    expect(resolveTracesEndpoint('http://opt:3/v1/traces', env)).toBe('http://opt:3/v1/traces');
    expect(resolveTracesEndpoint(undefined, env)).toBe('http://traces:1/custom');
    expect(
      resolveTracesEndpoint(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:2/' }),
    ).toBe('http://base:2/v1/traces');
    expect(resolveTracesEndpoint(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(
      DEFAULT_TRACES_ENDPOINT,
    );
  });
});
