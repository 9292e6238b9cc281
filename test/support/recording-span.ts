import type { AttributeValue, Attributes, Span } from '@opentelemetry/api';

/**
 * A stand-in span that only keeps the attributes set on it, for unit tests of the pure readers
 * (what a response or a stream chunk records), where no SDK is involved.
 */
export function recordingSpan(): { span: Span; attributes: Record<string, AttributeValue> } {
  const attributes: Record<string, AttributeValue> = {};
  const span = {
    setAttribute(key: string, value: AttributeValue | undefined) {
      if (value !== undefined) attributes[key] = value;
      return span;
    },
    setAttributes(values: Attributes) {
      for (const [key, value] of Object.entries(values)) {
        if (value !== undefined) attributes[key] = value;
      }
      return span;
    },
  } as unknown as Span;
  return { span, attributes };
}
