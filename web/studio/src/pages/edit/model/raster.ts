// Pixel buffers and strokes, in plain typed arrays so they run (and are tested) without a canvas.
// A stroke keeps, per 64×64 tile it touches, the tile as it was and the stroke's own coverage so far; every
// dab recomputes the touched pixels from those, so overlapping dabs never darken and the tiles' before/after
// copies are the stroke's undo record.

export interface Rect {
  x: number
  y: number
  w: number
  h: number
}

/** A layer's pixels: `channels` 1 (a mask: 255 repaints) or 4 (RGBA, not premultiplied). */
export interface Raster {
  width: number
  height: number
  channels: 1 | 4
  data: Uint8ClampedArray
}

export interface Brush {
  /** diameter in image pixels */
  size: number
  /** 0 (soft edge all the way to the centre) … 1 (hard edge) */
  hardness: number
}

export type StrokeMode = 'paint' | 'erase'

export const TILE = 64

export function makeRaster(width: number, height: number, channels: 1 | 4): Raster {
  return { width, height, channels, data: new Uint8ClampedArray(width * height * channels) }
}

/** How much a dab of this brush covers a pixel `dist` pixels from its centre (0…1). */
export function dabCoverage(dist: number, brush: Brush): number {
  const r = Math.max(0.5, brush.size / 2)
  if (dist >= r) return 0
  const hard = Math.min(1, Math.max(0, brush.hardness))
  // the solid core, then a linear fall-off; a hard brush keeps a one-pixel anti-aliased rim
  const core = Math.max(0, Math.min(r * hard, r - 1))
  if (dist <= core) return 1
  return (r - dist) / (r - core)
}

export function clipRect(r: Rect, width: number, height: number): Rect | null {
  const x0 = Math.max(0, Math.floor(r.x))
  const y0 = Math.max(0, Math.floor(r.y))
  const x1 = Math.min(width, Math.ceil(r.x + r.w))
  const y1 = Math.min(height, Math.ceil(r.y + r.h))
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, w: x1 - x0, h: y1 - y0 } : null
}

export function unionRect(a: Rect | null, b: Rect | null): Rect | null {
  if (!a) return b
  if (!b) return a
  const x = Math.min(a.x, b.x)
  const y = Math.min(a.y, b.y)
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y }
}

export interface TilePatch {
  /** tile index: ty * tilesAcross + tx */
  index: number
  rect: Rect
  before: Uint8ClampedArray
  after: Uint8ClampedArray | null
}

interface StrokeTile extends TilePatch {
  coverage: Uint8Array
}

export function tileRect(raster: Raster, index: number): Rect {
  const across = Math.ceil(raster.width / TILE)
  const tx = index % across
  const ty = Math.floor(index / across)
  const x = tx * TILE
  const y = ty * TILE
  return { x, y, w: Math.min(TILE, raster.width - x), h: Math.min(TILE, raster.height - y) }
}

export function readRect(raster: Raster, r: Rect): Uint8ClampedArray {
  const c = raster.channels
  const out = new Uint8ClampedArray(r.w * r.h * c)
  for (let row = 0; row < r.h; row++) {
    const start = ((r.y + row) * raster.width + r.x) * c
    out.set(raster.data.subarray(start, start + r.w * c), row * r.w * c)
  }
  return out
}

export function writeRect(raster: Raster, r: Rect, pixels: Uint8ClampedArray): void {
  const c = raster.channels
  for (let row = 0; row < r.h; row++) {
    raster.data.set(pixels.subarray(row * r.w * c, (row + 1) * r.w * c), ((r.y + row) * raster.width + r.x) * c)
  }
}

/** Put tiles back as they were (`before`) or as the stroke left them (`after`); returns the changed area. */
export function applyPatches(raster: Raster, patches: TilePatch[], which: 'before' | 'after'): Rect | null {
  let dirty: Rect | null = null
  for (const p of patches) {
    const pixels = which === 'before' ? p.before : p.after
    if (!pixels) continue
    writeRect(raster, p.rect, pixels)
    dirty = unionRect(dirty, p.rect)
  }
  return dirty
}

export function patchBytes(patches: TilePatch[]): number {
  let n = 0
  for (const p of patches) n += p.before.byteLength + (p.after?.byteLength ?? 0)
  return n
}

/** One stroke (or one fill) on one raster: dabs, lines and rectangles, then `finish()` for its undo record. */
export class Stroke {
  private tiles = new Map<number, StrokeTile>()
  private readonly across: number

  constructor(
    readonly raster: Raster,
    readonly mode: StrokeMode,
    /** RGB for a colour layer; ignored by masks */
    readonly color: [number, number, number] = [255, 255, 255],
  ) {
    this.across = Math.ceil(raster.width / TILE)
  }

  private tile(index: number): StrokeTile {
    let t = this.tiles.get(index)
    if (!t) {
      const rect = tileRect(this.raster, index)
      t = { index, rect, before: readRect(this.raster, rect), after: null, coverage: new Uint8Array(rect.w * rect.h) }
      this.tiles.set(index, t)
    }
    return t
  }

  /** Raise the stroke's coverage of pixel (x, y) to `cov` (0…255) and recompute the pixel. */
  private cover(x: number, y: number, cov: number): void {
    const t = this.tile(Math.floor(y / TILE) * this.across + Math.floor(x / TILE))
    const lx = x - t.rect.x
    const ly = y - t.rect.y
    const li = ly * t.rect.w + lx
    if (cov <= t.coverage[li]) return
    t.coverage[li] = cov
    const a = cov / 255
    const r = this.raster
    if (r.channels === 1) {
      const before = t.before[li]
      r.data[y * r.width + x] = this.mode === 'paint' ? before + (255 - before) * a : before * (1 - a)
      return
    }
    const bi = li * 4
    const gi = (y * r.width + x) * 4
    const ba = t.before[bi + 3] / 255
    if (this.mode === 'erase') {
      r.data[gi] = t.before[bi]
      r.data[gi + 1] = t.before[bi + 1]
      r.data[gi + 2] = t.before[bi + 2]
      r.data[gi + 3] = ba * (1 - a) * 255
      return
    }
    // source-over of the stroke's colour at its coverage onto the pixel as it was
    const oa = a + ba * (1 - a)
    for (let k = 0; k < 3; k++) {
      r.data[gi + k] = oa > 0 ? (this.color[k] * a + t.before[bi + k] * ba * (1 - a)) / oa : 0
    }
    r.data[gi + 3] = oa * 255
  }

  /** One round dab centred on (cx, cy); `scale` shrinks it (pen pressure). Returns the area it touched. */
  dab(cx: number, cy: number, brush: Brush, scale = 1): Rect | null {
    const b = { size: Math.max(1, brush.size * scale), hardness: brush.hardness }
    const r = b.size / 2
    const area = clipRect({ x: cx - r, y: cy - r, w: 2 * r + 1, h: 2 * r + 1 }, this.raster.width, this.raster.height)
    if (!area) return null
    for (let y = area.y; y < area.y + area.h; y++) {
      for (let x = area.x; x < area.x + area.w; x++) {
        const cov = dabCoverage(Math.hypot(x + 0.5 - cx, y + 0.5 - cy), b)
        if (cov > 0) this.cover(x, y, Math.round(cov * 255))
      }
    }
    return area
  }

  /** Dabs from (x0, y0) to (x1, y1), spaced a fraction of the brush apart; the first point is not repeated. */
  line(x0: number, y0: number, x1: number, y1: number, brush: Brush, scale = 1): Rect | null {
    const step = Math.max(0.5, brush.size * scale * 0.15)
    const dist = Math.hypot(x1 - x0, y1 - y0)
    const n = Math.max(1, Math.ceil(dist / step))
    let dirty: Rect | null = null
    for (let i = 1; i <= n; i++) {
      const t = i / n
      dirty = unionRect(dirty, this.dab(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, brush, scale))
    }
    return dirty
  }

  /** Cover a rectangle fully (a selection fill). */
  fillRect(rect: Rect): Rect | null {
    const area = clipRect(rect, this.raster.width, this.raster.height)
    if (!area) return null
    for (let y = area.y; y < area.y + area.h; y++) for (let x = area.x; x < area.x + area.w; x++) this.cover(x, y, 255)
    return area
  }

  get touched(): boolean {
    return this.tiles.size > 0
  }

  /** The stroke's undo record: each touched tile before and after. */
  finish(): TilePatch[] {
    const out: TilePatch[] = []
    for (const t of this.tiles.values()) {
      out.push({ index: t.index, rect: t.rect, before: t.before, after: readRect(this.raster, t.rect) })
    }
    this.tiles.clear()
    return out
  }
}
