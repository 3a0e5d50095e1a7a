// Model downloads from Civitai, kept live by the stream's `download` events (bytes, speed, time left).
// In the main bundle because the event stream feeds it; the panel that shows it loads with its page.
import { reactive } from 'vue'

export type DownloadState = 'queued' | 'downloading' | 'verifying' | 'done' | 'error' | 'cancelled'

export interface Download {
  id: string
  state: DownloadState
  model_version_id: number | null
  file_name: string
  folder: string
  bytes: number
  total: number | null
  speed_bps: number | null
  eta_s: number | null
  error: string | null
}

export const ACTIVE_STATES: readonly DownloadState[] = ['queued', 'downloading', 'verifying']
const ORDER: readonly DownloadState[] = ['queued', 'downloading', 'verifying', 'done', 'error', 'cancelled']
const FINAL = new Set<DownloadState>(['done', 'error', 'cancelled'])

function isDownload(v: unknown): v is Download {
  if (!v || typeof v !== 'object') return false
  const d = v as Record<string, unknown>
  return typeof d.id === 'string' && typeof d.state === 'string' && ORDER.includes(d.state as DownloadState)
}

/** The list after one update: newest first; a late progress event never takes a finished download back. */
export function reduceDownloads(list: readonly Download[], d: Download): Download[] {
  const i = list.findIndex((x) => x.id === d.id)
  if (i < 0) return [d, ...list]
  const old = list[i]
  if (FINAL.has(old.state) && !FINAL.has(d.state)) return list as Download[]
  const next = list.slice()
  next[i] = { ...old, ...d }
  return next
}

export const downloads = reactive({ items: [] as Download[] })

/** A `download` event: `{download: Download}`. */
export function applyDownloadEvent(data: Record<string, unknown>) {
  const d = data.download ?? data
  if (isDownload(d)) downloads.items = reduceDownloads(downloads.items, d)
}

/** GET /civitai/downloads: merged with what events already told us. */
export function applyDownloadList(items: unknown[]) {
  let list = downloads.items
  for (const d of items) if (isDownload(d)) list = reduceDownloads(list, d)
  downloads.items = list
}

export function fraction(d: Download): number | null {
  if (d.state === 'done') return 1
  return d.total && d.total > 0 ? Math.min(1, d.bytes / d.total) : null
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`
}

export function formatEta(s: number | null): string {
  if (s == null || !Number.isFinite(s) || s < 0) return ''
  if (s < 60) return `${Math.max(1, Math.round(s))} s left`
  if (s < 3600) return `${Math.round(s / 60)} min left`
  const h = Math.floor(s / 3600)
  return `${h} h ${Math.round((s - h * 3600) / 60)} min left`
}

/** "1.2 GB of 2.0 GB · 8.4 MB/s · 2 min left" */
export function progressText(d: Download): string {
  const parts = [d.total ? `${formatBytes(d.bytes)} of ${formatBytes(d.total)}` : formatBytes(d.bytes)]
  if (d.state === 'downloading' && d.speed_bps) parts.push(`${formatBytes(d.speed_bps)}/s`)
  const eta = d.state === 'downloading' ? formatEta(d.eta_s) : ''
  if (eta) parts.push(eta)
  return parts.join(' · ')
}
