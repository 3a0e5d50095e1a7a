// What the editor sends: the composited picture and the mask, both at the canvas's real size (the image's
// own pixels plus any outpaint padding), pixel for pixel aligned.
import { canvasSize, hasPadding, type EditDoc, type Layer } from './editor'
import type { Raster } from './raster'

/** ImagePadForOutpaint fills new area with mid-grey; the editor does the same. */
export const PAD_FILL = 128

/** The picture: padding grey, the image, then every visible paint layer at its opacity (masks are not drawn). */
export function composite(doc: EditDoc): Raster {
  const { width, height } = canvasSize(doc)
  const out = new Uint8ClampedArray(width * height * 4)
  for (let i = 0; i < out.length; i += 4) {
    out[i] = out[i + 1] = out[i + 2] = PAD_FILL
    out[i + 3] = 255
  }
  for (const layer of doc.layers) {
    if (!layer.visible || layer.opacity <= 0 || layer.kind === 'mask') continue
    const dx = layer.kind === 'image' ? doc.pad.left : 0
    const dy = layer.kind === 'image' ? doc.pad.top : 0
    blendOver(out, width, layer.raster, dx, dy, layer.opacity)
  }
  return { width, height, channels: 4, data: out }
}

function blendOver(out: Uint8ClampedArray, width: number, src: Raster, dx: number, dy: number, opacity: number): void {
  const s = src.data
  for (let y = 0; y < src.height; y++) {
    for (let x = 0; x < src.width; x++) {
      const si = (y * src.width + x) * 4
      const a = (s[si + 3] / 255) * opacity
      if (a <= 0) continue
      const oi = ((y + dy) * width + (x + dx)) * 4
      out[oi] = s[si] * a + out[oi] * (1 - a)
      out[oi + 1] = s[si + 1] * a + out[oi + 1] * (1 - a)
      out[oi + 2] = s[si + 2] * a + out[oi + 2] * (1 - a)
    }
  }
}

/** How much to repaint per canvas pixel (255: all): the visible mask layers together, and all the padding. */
export function maskAmount(doc: EditDoc): Uint8ClampedArray {
  const { width, height } = canvasSize(doc)
  const out = new Uint8ClampedArray(width * height)
  for (const layer of doc.layers) {
    if (layer.kind !== 'mask' || !layer.visible) continue
    const d = layer.raster.data
    for (let i = 0; i < out.length; i++) if (d[i] > out[i]) out[i] = d[i]
  }
  const { left, top } = doc.pad
  for (let y = 0; y < height; y++) {
    const outside = y < top || y >= top + doc.height
    for (let x = 0; x < width; x++) {
      if (outside || x < left || x >= left + doc.width) out[y * width + x] = 255
    }
  }
  return out
}

/** The mask file's pixels in ComfyUI's form: black, transparent where repainted (LoadImage's MASK = 1 − alpha). */
export function maskPixels(amount: Uint8ClampedArray, width: number, height: number): Raster {
  const data = new Uint8ClampedArray(width * height * 4)
  for (let i = 0; i < amount.length; i++) data[i * 4 + 3] = 255 - amount[i]
  return { width, height, channels: 4, data }
}

export function anyPainted(amount: Uint8ClampedArray): boolean {
  for (let i = 0; i < amount.length; i++) if (amount[i] > 0) return true
  return false
}

function paintsSomething(layer: Layer): boolean {
  if (layer.kind !== 'paint' || !layer.visible || layer.opacity <= 0) return false
  const d = layer.raster.data
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true
  return false
}

/** Whether the picture differs from the source image (else the editor sends the image's id, not a new file). */
export function pictureChanged(doc: EditDoc): boolean {
  const image = doc.layers.find((l) => l.kind === 'image')
  if (hasPadding(doc.pad) || !image?.visible || image.opacity < 1) return true
  return doc.layers.some(paintsSomething)
}

/** A region of a raster (the picture without its padding, for an outpaint action that pads by itself). */
export function crop(src: Raster, x: number, y: number, width: number, height: number): Raster {
  const c = src.channels
  const data = new Uint8ClampedArray(width * height * c)
  for (let row = 0; row < height; row++) {
    const from = ((row + y) * src.width + x) * c
    data.set(src.data.subarray(from, from + width * c), row * width * c)
  }
  return { width, height, channels: src.channels, data }
}
