import { context, diag, trace, type Context, type Tracer } from '@opentelemetry/api';
import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import { guard } from '../errors.js';
import type { CaptureOptions } from '../types.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version.js';
import { watchHttpAttempts } from './http-attempts.js';
import { isObject } from './params.js';
import { startOf, type ProviderCapture, type ResourcePatch, type SdkMethod } from './provider.js';
import { LlmCall } from './span-lifecycle.js';

/**
 * Patching a provider SDK from its declaration (provider.ts): find the resource prototypes in the
 * loaded module, wrap their methods once, and undo it. Every wrapper returns what the SDK returns,
 * untouched, and never lets a failure of ours reach the caller.
 */

// Symbol.for: a second copy of this package in the same process recognises our wrapper.
const ORIGINAL: unique symbol = Symbol.for('routewatch.original');

interface Wrapped extends SdkMethod {
  [ORIGINAL]?: SdkMethod;
}

/** Replaces `target[name]` by `wrap(original)`, once: a second call leaves our wrapper alone. */
export function wrapMethod(
  target: object,
  name: string,
  wrap: (original: SdkMethod) => SdkMethod,
): void {
  const holder = target as Record<string, unknown>;
  const current = holder[name];
  if (typeof current !== 'function' || (current as Wrapped)[ORIGINAL] !== undefined) return;
  const wrapped: Wrapped = wrap(current as SdkMethod);
  wrapped[ORIGINAL] = current as SdkMethod;
  holder[name] = wrapped;
}

export function unwrapMethod(target: object, name: string): void {
  const holder = target as Record<string, unknown>;
  const original = (holder[name] as Wrapped | undefined)?.[ORIGINAL];
  if (original !== undefined) holder[name] = original;
}

/**
 * Calls `original` inside an LLM span. `begin` reads the call (a failure costs the span, never the
 * call); `runIn` picks the context the SDK runs in (default: ours, with our span active).
 */
export function tracedCall(
  self: unknown,
  args: unknown[],
  original: SdkMethod,
  begin: () => { call: LlmCall; args?: unknown[] | undefined } | undefined,
  runIn: (call: LlmCall) => Context = (call) => call.ctx,
): unknown {
  const started = guard('starting an LLM span', begin);
  if (started === undefined) return original.apply(self, args);
  const { call } = started;
  const callArgs = started.args ?? args;
  const ctx = guard('choosing the call context', () => runIn(call)) ?? call.ctx;
  let result: unknown;
  try {
    result = context.with(ctx, () => original.apply(self, callArgs));
  } catch (error) {
    call.fail(error);
    throw error;
  }
  if (guard('observing a response', () => call.observe(result)) === undefined) call.end();
  // The SDK's own APIPromise, untouched: `.withResponse()`, `.asResponse()` keep working.
  return result;
}

/** Instrumentation scope of a provider's spans: `@routewatch/instrumentation/<provider>`. */
export function scopeName(capture: ProviderCapture<never>): string {
  return `${PACKAGE_NAME}/${capture.provider}`;
}

/**
 * The prototype of one resource class, looked up under the client class on the module namespace
 * and on `default`, then under `default` and the module itself (the CommonJS exports, or the
 * client class passed directly). Undefined when no candidate has it with its traced method.
 */
function findPrototype(
  moduleExports: unknown,
  clientExport: string,
  resource: ResourcePatch<never>,
): object | undefined {
  const mod = moduleExports as Record<string, unknown> | null | undefined;
  const defaultExport = mod?.['default'] as Record<string, unknown> | null | undefined;
  const candidates = [mod?.[clientExport], defaultExport?.[clientExport], defaultExport, mod];
  for (const candidate of candidates) {
    if (candidate === null || (typeof candidate !== 'function' && typeof candidate !== 'object')) {
      continue;
    }
    let holder: unknown = candidate;
    for (const key of resource.path)
      holder = (holder as Record<string, unknown> | undefined)?.[key];
    const proto = (holder as { prototype?: unknown } | undefined)?.prototype;
    if (isObject(proto) && typeof proto[resource.method] === 'function') return proto;
  }
  return undefined;
}

/** Wraps the declared methods of every resource found; false when none was found. */
function patchProvider<O extends CaptureOptions>(
  capture: ProviderCapture<O>,
  moduleExports: unknown,
  getTracer: () => Tracer,
  getOptions: () => O,
): boolean {
  watchHttpAttempts();
  let found = false;
  for (const resource of capture.resources) {
    const proto = findPrototype(moduleExports, capture.clientExport, resource);
    if (proto === undefined) continue;
    found = true;
    wrapMethod(proto, resource.method, (original) =>
      tracedMethod(capture, resource, original, getTracer, getOptions),
    );
    for (const [name, wrap] of Object.entries(resource.companions ?? {})) {
      wrapMethod(proto, name, wrap);
    }
  }
  return found;
}

function unpatchProvider(capture: ProviderCapture<never>, moduleExports: unknown): void {
  for (const resource of capture.resources) {
    const proto = findPrototype(moduleExports, capture.clientExport, resource);
    if (proto === undefined) continue;
    unwrapMethod(proto, resource.method);
    for (const name of Object.keys(resource.companions ?? {})) unwrapMethod(proto, name);
  }
}

/** The wrapper of one traced method: an LLM span around each call. */
function tracedMethod<O extends CaptureOptions>(
  capture: ProviderCapture<O>,
  resource: ResourcePatch<O>,
  original: SdkMethod,
  getTracer: () => Tracer,
  getOptions: () => O,
): SdkMethod {
  const { operation, parentContext, runIn } = resource;
  return function routewatchCapture(this: unknown, ...args: unknown[]): unknown {
    return tracedCall(
      this,
      args,
      original,
      () => {
        const active = context.active();
        const parent = parentContext === undefined ? active : parentContext(active);
        const start = startOf(capture, operation, this, args, getOptions());
        return { call: LlmCall.start(getTracer(), parent, start), args: start.args };
      },
      runIn === undefined ? undefined : (call) => runIn(this, call.ctx),
    );
  };
}

/**
 * The module definition an `InstrumentationBase` returns from `init()`: patches the provider's
 * module when it is loaded by `require` or (with the loader hook) `import`.
 */
export function moduleDefinitions<O extends CaptureOptions>(
  capture: ProviderCapture<O>,
  getTracer: () => Tracer,
  getOptions: () => O,
): InstrumentationNodeModuleDefinition[] {
  return [
    new InstrumentationNodeModuleDefinition(
      capture.module,
      [...capture.supportedVersions],
      (moduleExports: unknown) => {
        guard(`patching ${capture.module}`, () => {
          if (!patchProvider(capture, moduleExports, getTracer, getOptions)) {
            diag.warn(`routewatch: ${capture.module} loaded without the resources we capture`);
          }
        });
        return moduleExports;
      },
      (moduleExports: unknown) => {
        guard(`unpatching ${capture.module}`, () => unpatchProvider(capture, moduleExports));
      },
    ),
  ];
}

/**
 * Patches an already imported provider module directly, for processes where no loader hook runs
 * (tests, in-process demos). Idempotent; `options` are read on every call.
 */
export function instrumentModule<O extends CaptureOptions>(
  capture: ProviderCapture<O>,
  moduleExports: unknown,
  options: O,
): void {
  guard(`instrumenting ${capture.module}`, () => {
    // Looked up on first use, then kept: the global provider may be registered after this call.
    let tracer: Tracer | undefined;
    const patched = patchProvider(
      capture,
      moduleExports,
      () => (tracer ??= trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION)),
      () => options,
    );
    if (!patched) {
      diag.warn(
        `routewatch: instrument${capture.displayName} found no ${capture.displayName} resources in the given module`,
      );
    }
  });
}
