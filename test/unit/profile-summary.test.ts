import { describe, expect, it } from 'vitest';
import { allocationSites } from '../../bench/instrumentation/cpu-profile.js';
import type { HeapProfile } from '../../bench/instrumentation/cpu-profile.js';

const frame = (functionName: string, url: string, lineNumber: number) => ({
  functionName,
  url,
  lineNumber,
});

describe('allocationSites (bench heap-profile summary)', () => {
  it('sums the bytes each function allocated itself, over every path that reached it', () => {
    const profile: HeapProfile = {
      head: {
        callFrame: frame('(root)', '', -1),
        selfSize: 0,
        children: [
          {
            callFrame: frame('handle', 'file:///repo/dist/collector/otlp-routes.js', 9),
            selfSize: 1000,
            children: [
              {
                callFrame: frame('concat', 'node:buffer', 99),
                selfSize: 3000,
                children: [],
              },
            ],
          },
          {
            callFrame: frame('drain', 'file:///repo/dist/collector/wal-drainer.js', 4),
            selfSize: 0,
            children: [
              { callFrame: frame('concat', 'node:buffer', 99), selfSize: 4000, children: [] },
            ],
          },
        ],
      },
    };
    const sites = allocationSites(profile);
    expect(sites.map(({ location, owner, bytes }) => ({ location, owner, bytes }))).toEqual([
      { location: 'concat (node:buffer:100)', owner: 'node', bytes: 7000 },
      {
        location: 'handle (/repo/dist/collector/otlp-routes.js:10)',
        owner: 'file:///repo/dist/collector/otlp-routes.js',
        bytes: 1000,
      },
    ]);
    expect(sites[0]!.share).toBeCloseTo(0.875);
    expect(sites[1]!.share).toBeCloseTo(0.125);
  });

  it('gives nothing for a profile without allocations', () => {
    const empty: HeapProfile = {
      head: { callFrame: frame('(root)', '', -1), selfSize: 0, children: [] },
    };
    expect(allocationSites(empty)).toEqual([]);
  });
});
