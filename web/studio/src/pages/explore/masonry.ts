// The Explore grid's geometry: columns for a width, each tile's height from its data (never measured, so
// nothing shifts when an image arrives), tiles placed in the shortest column, and the tiles near the
// viewport found by a binary search per column, so thousands of results cost the same as a screenful.

export interface Placed {
  x: number
  y: number
  w: number
  h: number
  col: number
}

export interface Layout {
  tiles: Placed[]
  /** per column, the indices of its tiles top to bottom */
  columns: number[][]
  height: number
  colWidth: number
}

export const GAP = 12
export const MIN_COL = 230
export const MAX_COLS = 6
/** tall or wide images are cropped to these aspect ratios (height / width) */
export const MIN_RATIO = 0.5
export const MAX_RATIO = 2
/** an image whose size Civitai does not know gets this ratio */
export const UNKNOWN_RATIO = 1.25

/** the grid's width when last measured (the page's width rarely changes between visits) */
export const lastWidth = { value: 0 }

export function columnsFor(width: number, minCol = MIN_COL, gap = GAP, maxCols = MAX_COLS): number {
  if (width < minCol + 50) return 1
  return Math.max(2, Math.min(maxCols, Math.floor((width + gap) / (minCol + gap))))
}

export function columnWidth(width: number, cols: number, gap = GAP): number {
  return Math.max(1, Math.floor((width - gap * (cols - 1)) / cols))
}

/** The height of a thumbnail shown `colWidth` wide: the image's own ratio within bounds. */
export function thumbHeight(width: number | null | undefined, height: number | null | undefined, colWidth: number): number {
  const ratio = width && height && width > 0 && height > 0 ? Math.min(MAX_RATIO, Math.max(MIN_RATIO, height / width)) : UNKNOWN_RATIO
  return Math.round(colWidth * ratio)
}

/** Place tiles of the given heights (`heightOf(i, colWidth)`) into the shortest column, left first on ties. */
export function layoutMasonry(count: number, width: number, heightOf: (i: number, colWidth: number) => number, gap = GAP, minCol = MIN_COL): Layout {
  const cols = columnsFor(width, minCol, gap)
  const colWidth = columnWidth(width, cols, gap)
  const bottoms = new Array<number>(cols).fill(0)
  const columns: number[][] = Array.from({ length: cols }, () => [])
  const tiles = new Array<Placed>(count)
  for (let i = 0; i < count; i++) {
    let col = 0
    for (let c = 1; c < cols; c++) if (bottoms[c] < bottoms[col]) col = c
    const h = Math.max(1, Math.round(heightOf(i, colWidth)))
    const y = bottoms[col]
    tiles[i] = { x: col * (colWidth + gap), y, w: colWidth, h, col }
    columns[col].push(i)
    bottoms[col] = y + h + gap
  }
  const height = count ? Math.max(...bottoms) - gap : 0
  return { tiles, columns, height, colWidth }
}

/** Indices (ascending) of the tiles that overlap [top - overscan, top + viewport + overscan]. */
export function visibleTiles(layout: Layout, top: number, viewport: number, overscan = 600): number[] {
  const from = top - overscan
  const to = top + viewport + overscan
  const out: number[] = []
  for (const col of layout.columns) {
    // first tile in this column whose bottom reaches `from`
    let lo = 0
    let hi = col.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const t = layout.tiles[col[mid]]
      if (t.y + t.h < from) lo = mid + 1
      else hi = mid
    }
    for (let k = lo; k < col.length; k++) {
      const t = layout.tiles[col[k]]
      if (t.y > to) break
      out.push(col[k])
    }
  }
  return out.sort((a, b) => a - b)
}

/** Lines of a prompt card's text shown `colWidth` wide (a fixed clamp keeps the height predictable). */
export const CARD_LINE = 19
export const CARD_CHAR = 7.1
export const CARD_PAD = 14
export const CARD_MAX_LINES = 9
export function promptLines(text: string, colWidth: number): number {
  const perLine = Math.max(8, Math.floor((colWidth - 2 * CARD_PAD) / CARD_CHAR))
  let lines = 0
  for (const para of (text || '').split('\n')) lines += Math.max(1, Math.ceil(para.length / perLine))
  return Math.max(1, Math.min(CARD_MAX_LINES, lines))
}

/** A prompt card: a thumbnail strip, the clamped prompt, two lines of settings. */
export const CARD_THUMB = 96
export function promptCardHeight(text: string, colWidth: number): number {
  return CARD_THUMB + CARD_PAD * 2 + promptLines(text, colWidth) * CARD_LINE + 8 + 2 * 18
}

/** A model card: its image, then name and details under it. */
export const MODEL_CAPTION = 76
