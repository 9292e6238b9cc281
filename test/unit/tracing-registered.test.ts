import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { tracingAlreadyRegistered } from '../../instrumentation/src/sdk.js';

// Regression of V2 in /work/notes/verify-instrumentation-35.md: the check went by the no-op
// provider's class name, which bundlers rename (esbuild: NoopTracerProvider2), so a bundled app
// with no SDK of its own was taken for one that had, and recorded nothing.
describe('tracingAlreadyRegistered', () => {
  afterEach(() => trace.disable());

  it('is false with no provider registered, true once one is, and false again after', () => {
    trace.disable();
    expect(tracingAlreadyRegistered()).toBe(false);
    expect(trace.setGlobalTracerProvider(new BasicTracerProvider())).toBe(true);
    expect(tracingAlreadyRegistered()).toBe(true);
    trace.disable();
    expect(tracingAlreadyRegistered()).toBe(false);
  });

  it('does not go by class names: a renamed no-op provider is still none', () => {
    trace.disable();
    const proxy = trace.getTracerProvider() as unknown as { getDelegate(): object };
    const noop = proxy.getDelegate();
    // What a bundler does to the class: another name, the same object.
    Object.defineProperty(noop.constructor, 'name', { value: 'NoopTracerProvider2' });
    expect(tracingAlreadyRegistered()).toBe(false);
  });
});
