/** Levenshtein distance: how many one-character edits turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length]!;
}

/**
 * The candidate nearest `name`, if near enough to be a typo of it: two edits, or a third of the
 * name. Further than that is no typo. Ties go to the first candidate.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let suggestion: string | undefined;
  let best = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < best) [best, suggestion] = [distance, candidate];
  }
  return best <= Math.max(2, Math.floor(name.length / 3)) ? suggestion : undefined;
}
