// The editor's document and every change to it. Each change goes through here and lands in the history,
// so undo covers strokes and layer operations alike; listeners hear what changed to redraw only that.
import { History, type HistoryEntry } from './history'
import {
  applyPatches,
  makeRaster,
  patchBytes,
  Stroke,
  type Raster,
  type Rect,
  type StrokeMode,
} from './raster'

export type LayerKind = 'image' | 'mask' | 'paint'
export type RGB = [number, number, number]

export interface Layer {
  id: string
  kind: LayerKind
  name: string
  visible: boolean
  /** 0…1 */
  opacity: number
  /** a mask's tint, a paint layer's brush colour */
  color: RGB
  /** the image layer: the source at its own size, drawn at the padding's offset; others: the whole canvas */
  raster: Raster
}

export interface Padding {
  left: number
  top: number
  right: number
  bottom: number
}

export interface EditDoc {
  imageId: string
  /** the source image's real size */
  width: number
  height: number
  pad: Padding
  /** bottom to top; the first is the image */
  layers: Layer[]
  activeId: string
  /** numbers new layers' ids and names */
  seq: number
}

export type Change =
  | { kind: 'pixels'; layerId: string; rect: Rect | null }
  | { kind: 'layers' }
  | { kind: 'size' }
  | { kind: 'history' }

export const PAD_STEP = 8
export const MAX_PAD = 4096
export const NO_PAD: Padding = { left: 0, top: 0, right: 0, bottom: 0 }
const MASK_TINT: RGB = [255, 64, 112]

export function canvasSize(doc: { width: number; height: number; pad: Padding }): { width: number; height: number } {
  return { width: doc.width + doc.pad.left + doc.pad.right, height: doc.height + doc.pad.top + doc.pad.bottom }
}

/** A side's padding as the outpaint workflows take it: a multiple of 8 from 0 to MAX_PAD. */
export function snapPad(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0
  return Math.min(MAX_PAD, Math.round(value / PAD_STEP) * PAD_STEP)
}

export function hasPadding(pad: Padding): boolean {
  return pad.left > 0 || pad.top > 0 || pad.right > 0 || pad.bottom > 0
}

/** A new document over an image's RGBA pixels, with one empty mask layer, active. */
export function newDoc(imageId: string, image: Raster): EditDoc {
  const base: Layer = { id: 'image', kind: 'image', name: 'Image', visible: true, opacity: 1, color: [0, 0, 0], raster: image }
  const mask: Layer = {
    id: 'l1',
    kind: 'mask',
    name: 'Mask 1',
    visible: true,
    opacity: 1,
    color: MASK_TINT,
    raster: makeRaster(image.width, image.height, 1),
  }
  return { imageId, width: image.width, height: image.height, pad: { ...NO_PAD }, layers: [base, mask], activeId: mask.id, seq: 1 }
}

/** A raster moved onto a canvas of another size, shifted by (dx, dy); what falls outside is cut off. */
export function shiftRaster(src: Raster, width: number, height: number, dx: number, dy: number): Raster {
  const out = makeRaster(width, height, src.channels)
  const c = src.channels
  const x0 = Math.max(0, dx)
  const x1 = Math.min(width, src.width + dx)
  if (x1 <= x0) return out
  for (let y = Math.max(0, dy); y < Math.min(height, src.height + dy); y++) {
    const from = ((y - dy) * src.width + (x0 - dx)) * c
    out.data.set(src.data.subarray(from, from + (x1 - x0) * c), (y * width + x0) * c)
  }
  return out
}

export class Editor {
  readonly history: History
  private listeners = new Set<(c: Change) => void>()

  constructor(
    public doc: EditDoc,
    budget?: number,
  ) {
    this.history = new History(budget)
  }

  on(listener: (c: Change) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
  private emit(c: Change): void {
    for (const l of this.listeners) l(c)
  }

  layer(id: string): Layer | undefined {
    return this.doc.layers.find((l) => l.id === id)
  }
  get active(): Layer | undefined {
    return this.layer(this.doc.activeId)
  }
  get size(): { width: number; height: number } {
    return canvasSize(this.doc)
  }

  private record(entry: HistoryEntry): void {
    this.history.push(entry)
    this.emit({ kind: 'history' })
  }

  setActive(id: string): void {
    if (!this.layer(id) || this.doc.activeId === id) return
    this.doc.activeId = id
    this.emit({ kind: 'layers' })
  }

  /** A mask's tint or a paint layer's next colour (not a step of the history: no pixel changes). */
  recolor(id: string, color: RGB): void {
    const layer = this.layer(id)
    if (!layer || layer.kind === 'image') return
    layer.color = color
    this.emit({ kind: 'pixels', layerId: id, rect: null })
  }

  // -- strokes ------------------------------------------------------------------------------------------

  /** A stroke on the active layer, or null when that layer takes no paint (the image). */
  beginStroke(mode: StrokeMode): Stroke | null {
    const layer = this.active
    if (!layer || layer.kind === 'image') return null
    return new Stroke(layer.raster, mode, layer.color)
  }

  /** Report a stroke's progress so the view redraws that area. */
  painted(stroke: Stroke, rect: Rect | null): void {
    const layer = this.doc.layers.find((l) => l.raster === stroke.raster)
    if (layer && rect) this.emit({ kind: 'pixels', layerId: layer.id, rect })
  }

  endStroke(stroke: Stroke, label = stroke.mode === 'erase' ? 'Erase' : 'Paint'): void {
    if (!stroke.touched) return
    const layer = this.doc.layers.find((l) => l.raster === stroke.raster)
    if (!layer) return
    this.recordPatches(layer, stroke.finish(), label)
  }

  private recordPatches(layer: Layer, patches: ReturnType<Stroke['finish']>, label: string): void {
    const apply = (which: 'before' | 'after') => {
      // the layer may have been re-allocated by a canvas resize since; its patches then belong to the old raster
      const rect = applyPatches(layer.raster, patches, which)
      this.emit({ kind: 'pixels', layerId: layer.id, rect })
    }
    this.record({ label, bytes: patchBytes(patches), undo: () => apply('before'), redo: () => apply('after') })
  }

  /** Fill a rectangle of the active layer (a selection fill), as one undoable step. */
  fillRect(rect: Rect, mode: StrokeMode = 'paint'): boolean {
    const stroke = this.beginStroke(mode)
    if (!stroke) return false
    const area = stroke.fillRect(rect)
    if (!area) return false
    this.painted(stroke, area)
    this.endStroke(stroke, mode === 'paint' ? 'Fill selection' : 'Clear selection')
    return true
  }

  /** Invert a mask layer (255 − value everywhere); undo inverts it back, so the entry holds no pixels. */
  invert(id = this.doc.activeId): boolean {
    const layer = this.layer(id)
    if (!layer || layer.kind !== 'mask') return false
    const run = () => {
      const d = layer.raster.data
      for (let i = 0; i < d.length; i++) d[i] = 255 - d[i]
      this.emit({ kind: 'pixels', layerId: layer.id, rect: null })
    }
    run()
    this.record({ label: 'Invert mask', bytes: 0, undo: run, redo: run })
    return true
  }

  /** Empty a mask or paint layer. */
  clear(id = this.doc.activeId): boolean {
    const layer = this.layer(id)
    if (!layer || layer.kind === 'image') return false
    const before = layer.raster.data.slice()
    const set = (pixels: Uint8ClampedArray | null) => {
      if (pixels) layer.raster.data.set(pixels)
      else layer.raster.data.fill(0)
      this.emit({ kind: 'pixels', layerId: layer.id, rect: null })
    }
    set(null)
    this.record({ label: 'Clear layer', bytes: before.byteLength, undo: () => set(before), redo: () => set(null) })
    return true
  }

  // -- layers -------------------------------------------------------------------------------------------

  /** A new layer above the active one, empty or holding `pixels` (a picture placed on the canvas). */
  addLayer(kind: 'mask' | 'paint', color?: RGB, pixels?: Raster, name?: string): Layer {
    const { width, height } = this.size
    const channels = kind === 'mask' ? 1 : 4
    if (pixels && (pixels.width !== width || pixels.height !== height || pixels.channels !== channels)) {
      throw new Error('A layer covers the whole canvas')
    }
    this.doc.seq += 1
    const count = this.doc.layers.filter((l) => l.kind === kind).length + 1
    const layer: Layer = {
      id: `l${this.doc.seq}`,
      kind,
      name: name ?? `${kind === 'mask' ? 'Mask' : 'Paint'} ${count}`,
      visible: true,
      opacity: 1,
      color: color ?? (kind === 'mask' ? MASK_TINT : [255, 255, 255]),
      raster: pixels ?? makeRaster(width, height, channels),
    }
    const previous = this.doc.activeId
    const index = this.doc.layers.findIndex((l) => l.id === previous) + 1 || this.doc.layers.length
    const insert = () => {
      this.doc.layers.splice(index, 0, layer)
      this.doc.activeId = layer.id
      this.emit({ kind: 'layers' })
    }
    const remove = () => {
      this.doc.layers = this.doc.layers.filter((l) => l !== layer)
      this.doc.activeId = previous
      this.emit({ kind: 'layers' })
    }
    insert()
    this.record({ label: 'Add layer', bytes: pixels ? pixels.data.byteLength : 0, undo: remove, redo: insert })
    return layer
  }

  deleteLayer(id: string): boolean {
    const index = this.doc.layers.findIndex((l) => l.id === id)
    const layer = this.doc.layers[index]
    if (!layer || layer.kind === 'image') return false
    const wasActive = this.doc.activeId
    const remove = () => {
      this.doc.layers.splice(index, 1)
      if (this.doc.activeId === id) this.doc.activeId = (this.doc.layers[index] ?? this.doc.layers[index - 1]).id
      this.emit({ kind: 'layers' })
    }
    const restore = () => {
      this.doc.layers.splice(index, 0, layer)
      this.doc.activeId = wasActive
      this.emit({ kind: 'layers' })
    }
    remove()
    this.record({ label: 'Delete layer', bytes: layer.raster.data.byteLength, undo: restore, redo: remove })
    return true
  }

  /** Move a layer up (+1, towards the top) or down (−1); the image stays at the bottom. */
  moveLayer(id: string, delta: number): boolean {
    const from = this.doc.layers.findIndex((l) => l.id === id)
    const to = from + delta
    if (from < 1 || to < 1 || to >= this.doc.layers.length) return false
    const move = (a: number, b: number) => () => {
      const [layer] = this.doc.layers.splice(a, 1)
      this.doc.layers.splice(b, 0, layer)
      this.emit({ kind: 'layers' })
    }
    move(from, to)()
    this.record({ label: 'Move layer', bytes: 0, undo: move(to, from), redo: move(from, to) })
    return true
  }

  setVisible(id: string, visible: boolean): void {
    this.setProp(id, 'visible', visible, visible ? 'Show layer' : 'Hide layer')
  }

  /** An opacity change; a drag of the slider is one step (call with `commit: false` while dragging). */
  setOpacity(id: string, opacity: number, from?: number): void {
    const layer = this.layer(id)
    if (!layer) return
    const value = Math.min(1, Math.max(0, opacity))
    const before = from ?? layer.opacity
    this.setProp(id, 'opacity', value, 'Layer opacity', before)
  }

  /** Live preview while a slider is dragged: not recorded (the drag's end records one step). */
  previewOpacity(id: string, opacity: number): void {
    const layer = this.layer(id)
    if (!layer) return
    layer.opacity = Math.min(1, Math.max(0, opacity))
    this.emit({ kind: 'layers' })
  }

  private setProp<K extends 'visible' | 'opacity'>(id: string, key: K, value: Layer[K], label: string, from?: Layer[K]) {
    const layer = this.layer(id)
    if (!layer) return
    const before = from ?? layer[key]
    if (before === value && layer[key] === value) return
    const set = (v: Layer[K]) => () => {
      layer[key] = v
      this.emit({ kind: 'layers' })
    }
    set(value)()
    this.record({ label, bytes: 0, undo: set(before), redo: set(value) })
  }

  // -- outpaint padding -----------------------------------------------------------------------------

  /** Extend (or shrink back) the canvas; sides snap to multiples of 8. The new area is masked on export. */
  setPadding(next: Padding): boolean {
    const pad: Padding = {
      left: snapPad(next.left),
      top: snapPad(next.top),
      right: snapPad(next.right),
      bottom: snapPad(next.bottom),
    }
    const old = { ...this.doc.pad }
    if (old.left === pad.left && old.top === pad.top && old.right === pad.right && old.bottom === pad.bottom) return false
    const layers = this.doc.layers.filter((l) => l.kind !== 'image')
    const kept = layers.map((l) => l.raster)
    const resize = () => {
      const { width, height } = canvasSize({ ...this.doc, pad })
      layers.forEach((l, i) => {
        l.raster = shiftRaster(kept[i], width, height, pad.left - old.left, pad.top - old.top)
      })
      this.doc.pad = { ...pad }
      this.emit({ kind: 'size' })
    }
    const restore = () => {
      layers.forEach((l, i) => {
        l.raster = kept[i]
      })
      this.doc.pad = { ...old }
      this.emit({ kind: 'size' })
    }
    resize()
    const bytes = kept.reduce((n, r) => n + r.data.byteLength, 0)
    this.record({ label: 'Extend canvas', bytes, undo: restore, redo: resize })
    return true
  }

  undo(): string | null {
    const label = this.history.undo()?.label ?? null
    if (label) this.emit({ kind: 'history' })
    return label
  }
  redo(): string | null {
    const label = this.history.redo()?.label ?? null
    if (label) this.emit({ kind: 'history' })
    return label
  }
}
