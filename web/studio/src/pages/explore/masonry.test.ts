import { describe, expect, it } from 'vitest'
import {
  CARD_MAX_LINES,
  GAP,
  columnWidth,
  columnsFor,
  layoutMasonry,
  promptCardHeight,
  promptLines,
  thumbHeight,
  visibleTiles,
} from './masonry'

describe('masonry columns', () => {
  it('uses two columns on a 390 px phone and four or five at 1280 px', () => {
    expect(columnsFor(390 - 32)).toBe(2)
    expect(columnsFor(1240)).toBe(5)
    expect(columnsFor(200)).toBe(1)
    expect(columnsFor(10_000)).toBe(6)
    expect(columnWidth(358, 2)).toBe(173)
  })
})

describe('thumbnail placeholders', () => {
  it('keeps the image ratio within bounds and gives unknown sizes a fixed ratio', () => {
    expect(thumbHeight(1024, 1536, 200)).toBe(300)
    expect(thumbHeight(1536, 1024, 300)).toBe(200)
    expect(thumbHeight(100, 1000, 200)).toBe(400) // very tall: cropped at 2:1
    expect(thumbHeight(1000, 100, 200)).toBe(100) // very wide: at least half the width
    expect(thumbHeight(null, null, 200)).toBe(250)
    expect(thumbHeight(0, 512, 200)).toBe(250)
  })
})

describe('masonry layout', () => {
  it('puts each tile under the shortest column, left first', () => {
    const heights = [300, 100, 100, 50]
    const l = layoutMasonry(heights.length, 500, (i) => heights[i], GAP, 200)
    expect(l.columns.length).toBe(2)
    const w = l.colWidth
    expect(l.tiles[0]).toEqual({ x: 0, y: 0, w, h: 300, col: 0 })
    expect(l.tiles[1]).toEqual({ x: w + GAP, y: 0, w, h: 100, col: 1 })
    expect(l.tiles[2]).toMatchObject({ col: 1, y: 100 + GAP })
    expect(l.tiles[3]).toMatchObject({ col: 1, y: 2 * (100 + GAP) })
    expect(l.height).toBe(300)
  })

  it('keeps placed tiles where they are when more pages arrive', () => {
    const h = (i: number) => 150 + ((i * 37) % 200)
    const first = layoutMasonry(50, 1240, h)
    const more = layoutMasonry(100, 1240, h)
    expect(more.tiles.slice(0, 50)).toEqual(first.tiles)
  })

  it('finds only the tiles near the viewport among 10,000', () => {
    const h = (i: number) => 150 + ((i * 37) % 200)
    const l = layoutMasonry(10_000, 1240, h)
    const top = 200_000
    const vis = visibleTiles(l, top, 900, 300)
    expect(vis.length).toBeGreaterThan(5)
    expect(vis.length).toBeLessThan(60)
    // exactly the overlapping ones, in index order
    const brute = l.tiles.flatMap((t, i) => (t.y + t.h >= top - 300 && t.y <= top + 1200 ? [i] : []))
    expect(vis).toEqual(brute)
    expect(visibleTiles(layoutMasonry(0, 1240, h), 0, 900)).toEqual([])
  })

  it('stays fast for thousands of results', () => {
    const t0 = performance.now()
    const l = layoutMasonry(20_000, 1240, (i) => 100 + (i % 7) * 30)
    for (let y = 0; y < l.height; y += 5000) visibleTiles(l, y, 900)
    expect(performance.now() - t0).toBeLessThan(500)
  })
})

describe('prompt cards', () => {
  it('grow with the text up to a clamp', () => {
    expect(promptLines('', 300)).toBe(1)
    expect(promptLines('short', 300)).toBe(1)
    expect(promptLines('x'.repeat(100), 300)).toBe(3)
    expect(promptLines('x'.repeat(10_000), 300)).toBe(CARD_MAX_LINES)
    expect(promptCardHeight('x'.repeat(10_000), 300)).toBeGreaterThan(promptCardHeight('short', 300))
  })
})
