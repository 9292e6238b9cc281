import { diag, type Attributes, type Span } from '@opentelemetry/api';
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  type GenAiOperation,
  type GenAiProvider,
} from '../semconv.js';

/**
 * Reading what the caller passed and what the SDK returned, defensively: the caller's params may
 * carry throwing getters, and a response may be any shape. Pure functions of their inputs (the
 * base-URL cache aside), tested directly in test/unit/capture-params.test.ts.
 */

/** The caller's request params, as a record whatever was passed. */
export type Params = Record<string, unknown>;

/** The value `fn` reads, or undefined when reading throws (a hostile getter of the caller's). */
export function read<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    diag.debug('routewatch: reading an LLM request parameter failed', error);
    return undefined;
  }
}

/** The call's parameters as a record, whatever the caller passed. */
export function paramsOf(value: unknown): Params {
  return (typeof value === 'object' && value !== null ? value : {}) as Params;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Sets a token count on the span when it is a finite number. */
export function setCount(span: Span, name: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) span.setAttribute(name, value);
}

/** Like setCount, into an attributes object set later in one call. */
export function putCount(attributes: Attributes, name: string, value: unknown): void {
  if (typeof value === 'number' && Number.isFinite(value)) attributes[name] = value;
}

/** `<operation> <model>`, or the operation alone when the model is unknown (GenAI span name). */
export function spanName(operation: string, model: string | undefined): string {
  return model === undefined ? operation : `${operation} ${model}`;
}

/** What every LLM span records from the request. */
export interface RequestAttributes {
  readonly model: string | undefined;
  readonly attributes: Attributes;
}

/**
 * Operation, provider, requested model, temperature, max tokens (the first of `maxTokensParams`
 * present) and the server of the SDK client. Each read on its own: a throwing getter of the
 * caller's params costs one attribute, not the span.
 */
export function requestAttributes(
  operation: GenAiOperation,
  provider: GenAiProvider,
  resource: unknown,
  params: Params,
  maxTokensParams: readonly string[] = [],
): RequestAttributes {
  const model = read(() => params['model']);
  const attributes: Attributes = {
    [ATTR_GEN_AI_OPERATION_NAME]: operation,
    [ATTR_GEN_AI_PROVIDER_NAME]: provider,
  };
  if (typeof model === 'string') attributes[ATTR_GEN_AI_REQUEST_MODEL] = model;
  if (maxTokensParams.length > 0) {
    const maxTokens = read(() => firstPresent(params, maxTokensParams));
    if (typeof maxTokens === 'number') attributes[ATTR_GEN_AI_REQUEST_MAX_TOKENS] = maxTokens;
  }
  const temperature = read(() => params['temperature']);
  if (typeof temperature === 'number') attributes[ATTR_GEN_AI_REQUEST_TEMPERATURE] = temperature;
  Object.assign(
    attributes,
    read(() => serverAttributes(resource)),
  );
  return { model: typeof model === 'string' ? model : undefined, attributes };
}

/** The first of `names` whose value is neither null nor undefined (as `a ?? b` reads them). */
function firstPresent(params: Params, names: readonly string[]): unknown {
  for (const name of names) {
    const value = params[name];
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
}

/** `server.address` / `server.port` from the client's base URL (`resource._client.baseURL`). */
const serverAttributesByBaseURL = new Map<string, Attributes>();

/** server.address / server.port of the SDK client's base URL, parsed once per URL. */
export function serverAttributes(resource: unknown): Attributes {
  const baseURL = (resource as { _client?: { baseURL?: unknown } } | null)?._client?.baseURL;
  if (typeof baseURL !== 'string') return {};
  let attributes = serverAttributesByBaseURL.get(baseURL);
  if (attributes === undefined) {
    const url = new URL(baseURL);
    attributes = { [ATTR_SERVER_ADDRESS]: url.hostname, [ATTR_SERVER_PORT]: portOf(url) };
    // A process talks to a handful of endpoints; the bound only guards against a pathological app.
    if (serverAttributesByBaseURL.size >= 64) serverAttributesByBaseURL.clear();
    serverAttributesByBaseURL.set(baseURL, attributes);
  }
  return attributes;
}

/** A URL's port, the scheme's default when it names none. */
export function portOf(url: URL): number {
  return url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
}
