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
