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
const FINAL_STATES: readonly DownloadState[] = ['done', 'error', 'cancelled']
const ALL_STATES: readonly DownloadState[] = [...ACTIVE_STATES, ...FINAL_STATES]

function isDownload(v: unknown): v is Download {
  if (!v || typeof v !== 'object') return false
  const d = v as Record<string, unknown>
  return typeof d.id === 'string' && typeof d.state === 'string' && ALL_STATES.includes(d.state as DownloadState)
}

/** The list after one update: newest first; a late progress event never takes a finished download back. */
export function reduceDownloads(list: readonly Download[], d: Download): Download[] {
  const i = list.findIndex((x) => x.id === d.id)
  if (i < 0) return [d, ...list]
  const old = list[i]
  if (FINAL_STATES.includes(old.state) && !FINAL_STATES.includes(d.state)) return list as Download[]
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
