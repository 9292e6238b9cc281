/** Intervals [from, to) merged where they overlap or touch, in order: none counted twice. */
export function mergeIntervals(spans: readonly [number, number][]): [number, number][] {
  const merged: [number, number][] = [];
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0])) {
    const last = merged.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}
