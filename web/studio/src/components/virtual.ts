// Windowing for the virtual list: prefix sums of row heights and a binary search for what is visible.

export function offsets(sizes: readonly number[]): number[] {
  const out = new Array<number>(sizes.length + 1)
  out[0] = 0
  for (let i = 0; i < sizes.length; i++) out[i + 1] = out[i] + sizes[i]
  return out
}

/** Index of the row containing `y` (the last row whose start is ≤ y). */
export function indexAt(offs: readonly number[], y: number): number {
  let lo = 0
  let hi = offs.length - 2
  if (hi < 0) return 0
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (offs[mid] <= y) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** [start, end) of the rows to render for a viewport, with `overscan` pixels above and below. */
export function visibleRange(offs: readonly number[], scrollTop: number, viewport: number, overscan = 600): [number, number] {
  const n = offs.length - 1
  if (n <= 0) return [0, 0]
  const start = indexAt(offs, Math.max(0, scrollTop - overscan))
  const end = Math.min(n, indexAt(offs, scrollTop + viewport + overscan) + 1)
  return [start, end]
}
