/** Okabe–Ito: line colours distinguishable with the common colour-vision deficiencies. Pure. */
export const PALETTE = [
  '#0072b2',
  '#d55e00',
  '#009e73',
  '#cc79a7',
  '#e69f00',
  '#56b4e9',
  '#000000',
  '#f0e442',
] as const;

export const colour = (i: number): string => PALETTE[i % PALETTE.length]!;

/**
 * The line pattern of the i-th line: solid for the first round of colours, then dashed, dotted
 * and dash-dotted, so that the ninth line (a twelfth fallback reason) is not the first one's twin.
 */
const DASHES: readonly (readonly number[])[] = [
  [8, 4],
  [2, 3],
  [8, 3, 2, 3],
];

export const dashOf = (i: number): number[] | undefined => {
  const round = Math.floor(i / PALETTE.length);
  return round === 0 ? undefined : [...DASHES[(round - 1) % DASHES.length]!];
};
