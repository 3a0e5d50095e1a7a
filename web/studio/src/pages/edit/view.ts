// The view's geometry: where the canvas sits on screen (scale and offset), zooming about a point, fitting.

export interface View {
  scale: number
  x: number
  y: number
}

export const MIN_SCALE = 0.02
export const MAX_SCALE = 32

export function fit(width: number, height: number, boxW: number, boxH: number, margin = 32): View {
  const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, (boxW - 2 * margin) / width, (boxH - 2 * margin) / height))
  return { scale, x: (boxW - width * scale) / 2, y: (boxH - height * scale) / 2 }
}

/** Zoom by `factor` keeping the canvas point under (px, py) where it is. */
export function zoomAt(v: View, factor: number, px: number, py: number): View {
  const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, v.scale * factor))
  const k = scale / v.scale
  return { scale, x: px - (px - v.x) * k, y: py - (py - v.y) * k }
}

export function toCanvas(v: View, px: number, py: number): { x: number; y: number } {
  return { x: (px - v.x) / v.scale, y: (py - v.y) / v.scale }
}
