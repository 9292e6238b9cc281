/**
 * The columns a text takes in a terminal, for the CLI's tables: cohort and route names come from
 * span attributes and may be Chinese, Japanese, Korean or emoji, which take two columns each,
 * or hold combining marks, which take none. `padEnd` counts UTF-16 units and misaligned them.
 */

/** Code points a terminal draws two columns wide (Unicode East Asian Wide and Fullwidth, emoji). */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], // Hangul Jamo initials
  [0x231a, 0x231b], // watch, hourglass
  [0x2329, 0x232a],
  [0x23e9, 0x23ec],
  [0x23f0, 0x23f0],
  [0x23f3, 0x23f3],
  [0x25fd, 0x25fe],
  [0x2614, 0x2615],
  [0x2648, 0x2653],
  [0x267f, 0x267f],
  [0x2693, 0x2693],
  [0x26a1, 0x26a1],
  [0x26aa, 0x26ab],
  [0x26bd, 0x26be],
  [0x26c4, 0x26c5],
  [0x26ce, 0x26ce],
  [0x26d4, 0x26d4],
  [0x26ea, 0x26ea],
  [0x26f2, 0x26f3],
  [0x26f5, 0x26f5],
  [0x26fa, 0x26fa],
  [0x26fd, 0x26fd],
  [0x2705, 0x2705],
  [0x270a, 0x270b],
  [0x2728, 0x2728],
  [0x274c, 0x274c],
  [0x274e, 0x274e],
  [0x2753, 0x2755],
  [0x2757, 0x2757],
  [0x2795, 0x2797],
  [0x27b0, 0x27b0],
  [0x27bf, 0x27bf],
  [0x2b1b, 0x2b1c],
  [0x2b50, 0x2b50],
  [0x2b55, 0x2b55],
  [0x2e80, 0x303e], // CJK radicals, punctuation
  [0x3041, 0x33ff], // kana, CJK compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6],
  [0x16fe0, 0x16fe4],
  [0x17000, 0x18cff],
  [0x1b000, 0x1b2ff],
  [0x1f004, 0x1f004],
  [0x1f0cf, 0x1f0cf],
  [0x1f18e, 0x1f18e],
  [0x1f191, 0x1f19a],
  [0x1f200, 0x1f251],
  [0x1f300, 0x1f64f], // pictographs, emoticons
  [0x1f680, 0x1f6ff], // transport and map
  [0x1f7e0, 0x1f7eb],
  [0x1f90c, 0x1f9ff], // supplemental symbols
  [0x1fa70, 0x1faff],
  [0x20000, 0x3fffd], // CJK extensions B and on
];

function isWide(codePoint: number): boolean {
  let low = 0;
  let high = WIDE.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [from, to] = WIDE[mid]!;
    if (codePoint < from) high = mid - 1;
    else if (codePoint > to) low = mid + 1;
    else return true;
  }
  return false;
}

/** Combining marks, format characters (zero-width joiner, …) and variation selectors. */
const ZERO_WIDTH = /[\p{Mn}\p{Me}\p{Cf}]/u;

/** How `printable` writes a control character: `\t`, `\n`, `\r`, or `\u001b`. */
function escapeControl(codePoint: number): string {
  if (codePoint === 0x09) return '\\t';
  if (codePoint === 0x0a) return '\\n';
  if (codePoint === 0x0d) return '\\r';
  return `\\u${codePoint.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with its control characters (C0, DEL, C1) written as escapes, as a table shows it: a tab
 * in a cohort name pushed its row's columns out of line, and an escape sequence in one would be
 * run by the terminal.
 */
export function printable(text: string): string {
  let out = '';
  for (const char of text) {
    const codePoint = char.codePointAt(0)!;
    out +=
      codePoint < 0x20 || (codePoint >= 0x7f && codePoint < 0xa0) ? escapeControl(codePoint) : char;
  }
  return out;
}

/** The columns `text` takes in a terminal, as `printable` shows it. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of printable(text)) {
    const codePoint = char.codePointAt(0)!;
    if (codePoint < 0x300) width += 1;
    else if (!ZERO_WIDTH.test(char)) width += isWide(codePoint) ? 2 : 1;
  }
  return width;
}

/** `text`, printable, padded with spaces on the right to `width` terminal columns. */
export function padEndTo(text: string, width: number): string {
  return printable(text) + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/** `text`, printable, padded with spaces on the left to `width` terminal columns. */
export function padStartTo(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(text))) + printable(text);
}

/**
 * A terminal table's columns: each as wide as its widest cell, the header's included, two spaces
 * apart, the `rightAligned` ones (figures) padded on the left. `line` sets out one row; `rule` is
 * the line under the header.
 */
export function tableLayout(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number> = new Set(),
): { line: (cells: readonly string[]) => string; rule: string } {
  const widths = header.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((row) => displayWidth(row[i] ?? ''))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) =>
        rightAligned.has(i) ? padStartTo(c, widths[i] ?? 0) : padEndTo(c, widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return { line, rule: line(widths.map((w) => '─'.repeat(w))) };
}
