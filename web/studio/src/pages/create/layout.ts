// Geometry of the job feed, computed from data and the feed's width alone, so the virtual list knows
// every row's height without measuring the DOM. One row per job; a row that starts a new prompt
// (Midjourney-style grouping of consecutive jobs with the same prompt) carries the prompt header.
import type { Image, Job } from '../../api/types'
import { aspectFromText, batchFromText } from './shortcodes'

export const HEADER_H = 60
export const META_H = 36
export const ROW_GAP = 20
export const TILE_GAP = 8
export const MESSAGE_H = 112

export interface Tile {
  x: number
  y: number
  w: number
  h: number
  image: Image | null
  index: number
}

export interface RowLayout {
  job: Job
  /** first job of a group of consecutive jobs with the same prompt */
  header: boolean
  tiles: Tile[]
  /** terminal without images: a message card instead of tiles */
  message: boolean
  tilesHeight: number
  height: number
}

export function targetTileHeight(width: number): number {
  if (width < 640) return 420
  return Math.round(Math.min(460, Math.max(220, width / 4.4)))
}

export function columnsFor(width: number): number {
  return width < 640 ? 2 : 4
}

/** Lines of up to `cols` tiles; each line as tall as fits the width, at most `target`. */
export function packTiles(aspects: number[], width: number, target: number, cols: number, images: (Image | null)[]) {
  const tiles: Tile[] = []
  let y = 0
  for (let i = 0; i < aspects.length; i += cols) {
    const line = aspects.slice(i, i + cols)
    const sum = line.reduce((a, b) => a + b, 0)
    const h = Math.floor(Math.min(target, (width - TILE_GAP * (line.length - 1)) / sum))
    let x = 0
    line.forEach((a, k) => {
      const w = Math.floor(h * a)
      tiles.push({ x, y, w, h, image: images[i + k] ?? null, index: i + k })
      x += w + TILE_GAP
    })
    y += h + TILE_GAP
  }
  return { tiles, height: Math.max(0, y - TILE_GAP) }
}

const PENDING = new Set(['queued', 'running'])
/** The stream says `done` a moment before the outputs arrive: keep placeholders that long. */
export const SETTLE_MS = 15000

export function settling(job: Job, now = Date.now()): boolean {
  if (job.state !== 'done' || (job.images?.length ?? 0) > 0 || !job.finished_at) return false
  const t = Date.parse(job.finished_at)
  return Number.isFinite(t) && now - t < SETTLE_MS
}

export function layoutRow(job: Job, header: boolean, width: number, now = Date.now()): RowLayout {
  const target = targetTileHeight(width)
  const cols = columnsFor(width)
  let tiles: Tile[] = []
  let tilesHeight = 0
  let message = false
  const images = job.images ?? []
  if (images.length) {
    const aspects = images.map((i) => (i.width > 0 && i.height > 0 ? i.width / i.height : 1))
    // a running job shows what has arrived plus placeholders for the rest of the batch
    const missing = PENDING.has(job.state) ? Math.max(0, batchFromText(job.prompt_text) - images.length) : 0
    const all = [...aspects, ...new Array(missing).fill(aspects[0])]
    ;({ tiles, height: tilesHeight } = packTiles(all, width, target, cols, images))
  } else if (PENDING.has(job.state) || settling(job, now)) {
    const n = batchFromText(job.prompt_text)
    const a = aspectFromText(job.prompt_text)
    ;({ tiles, height: tilesHeight } = packTiles(new Array(n).fill(a), width, target, cols, []))
  } else {
    message = true
    tilesHeight = MESSAGE_H
  }
  const height = (header ? HEADER_H : 0) + tilesHeight + META_H + ROW_GAP
  return { job, header, tiles, message, tilesHeight, height }
}

export function groupKey(job: Job): string {
  const text = (job.prompt_text ?? '').trim()
  return text || (job.action_slot ? `action:${job.action_slot}` : '')
}

/** What a row's geometry depends on besides the job object itself. */
export interface RowKey {
  width: number
  header: boolean
  state: Job['state']
  images: number
  settling: boolean
  text: string | null | undefined
}

export type LayoutCache = Map<string, { key: RowKey; row: RowLayout }>

function sameKey(a: RowKey, b: RowKey): boolean {
  return a.width === b.width && a.header === b.header && a.state === b.state && a.images === b.images && a.settling === b.settling && a.text === b.text
}

/**
 * One row per job. With a cache, a job whose geometry inputs are unchanged keeps its row (the very
 * same object when the job object is the same), so a new page lays out only its own rows; the rest is
 * a few comparisons per job, no strings built.
 */
export function layoutFeed(jobs: Job[], width: number, cache?: LayoutCache, now = Date.now()): RowLayout[] {
  const rows = new Array<RowLayout>(jobs.length)
  let prevKey: string | null = null
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]
    const group = groupKey(job)
    const header = group !== prevKey
    prevKey = group
    const key: RowKey = { width, header, state: job.state, images: job.images?.length ?? 0, settling: settling(job, now), text: job.prompt_text }
    const hit = cache?.get(job.id)
    if (hit && sameKey(hit.key, key)) {
      if (hit.row.job !== job) hit.row = { ...hit.row, job }
      rows[i] = hit.row
      continue
    }
    const row = layoutRow(job, header, width, now)
    cache?.set(job.id, { key, row })
    rows[i] = row
  }
  return rows
}
