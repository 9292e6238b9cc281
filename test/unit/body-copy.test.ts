import { describe, expect, it } from 'vitest';
import { withBodyCopy } from '../../instrumentation/src/capture/span-lifecycle.js';

// Our own parse of a response nobody asked for yet reads a copy of its body (review
// instrumentation #1), whatever shape the SDK calls parseResponse with.

const props = (stream = false) => ({
  response: new Response('{"id":"x"}', { headers: { 'content-type': 'application/json' } }),
  options: { stream },
});

describe('withBodyCopy', () => {
  it('copies the body of (client, props), as openai 5+ and Anthropic call it', async () => {
    const client = {};
    const given = props();
    const [c, copied] = withBodyCopy([client, given]) as [unknown, typeof given];
    expect(c).toBe(client);
    expect(copied.response).not.toBe(given.response);
    expect(await copied.response.text()).toBe('{"id":"x"}');
    expect(given.response.bodyUsed).toBe(false);
  });

  it('copies the body of (props), as openai 4 calls it', async () => {
    const given = props();
    const [copied] = withBodyCopy([given]) as [typeof given];
    expect(copied.response).not.toBe(given.response);
    await copied.response.text();
    expect(await given.response.text()).toBe('{"id":"x"}');
  });

  it('leaves a stream, a read body and arguments without a response as they are', () => {
    const stream = props(true);
    expect(withBodyCopy([{}, stream])[1]).toBe(stream);
    expect(withBodyCopy(['a', 1])).toEqual(['a', 1]);
  });
});
