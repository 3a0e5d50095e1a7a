// Storage: usage, maintenance reports and runs (the owner's), the Trash, expirable outputs.
import { api } from './client'
import type { Image } from './types'

export const CATEGORIES = ['originals', 'trash', 'thumbnails', 'previews', 'temp', 'partial', 'database'] as const
export type Category = (typeof CATEGORIES)[number]

export const CATEGORY_LABELS: Record<Category, string> = {
  originals: 'Your work',
  trash: 'Trash',
  thumbnails: 'Thumbnails',
  previews: 'Previews & temp',
  temp: 'Unused uploads',
  partial: 'Partial files',
  database: 'Database',
}

export interface Progress {
  running: boolean
  phase?: string
  done?: number
  total?: number
  run_id?: number
}

export interface RunRow {
  id: number
  trigger: string
  dry_run: boolean
  status: 'running' | 'done' | 'failed' | string
  started_at: string
  finished_at: string | null
  bytes_freed: number
  vacuumed: boolean
  summary: {
    remove?: Record<string, { count: number; bytes: number }>
    remove_bytes?: number
    notes?: string[]
    thumbnails_rebuilt?: number
    call_bodies_pruned?: number
    integrity?: string[]
    error?: string
  }
}

export interface RemovalItem {
  category: string
  path: string
  bytes: number
  reason: string
}

export interface Report {
  usage: Record<Category, number>
  total_bytes: number
  files_bytes: number
  quota: { total: number; per_user: number; over_after: boolean }
  remove: Record<string, { count: number; bytes: number }>
  remove_bytes: number
  thumbnails_to_rebuild: number
  call_bodies: { count: number; bytes: number }
  civitai_cache: { count: number; bytes: number }
  vacuum_due: boolean
  notes: string[]
  runs?: RunRow[]
  progress?: Progress
  items?: RemovalItem[]
}

export interface UserUsage {
  usage: Partial<Record<Category, number>>
  total_bytes: number
  quota_bytes: number
  last_removed: { run_id: number; finished_at: string; count: number; bytes: number } | null
}

export interface TrashItem {
  id: string
  state: string
  prompt_text: string | null
  created_at: string
  deleted_at: string
  purge_after: string
  images: Image[]
}

export const storage = {
  usage: () => api.get<UserUsage>('/storage/usage'),
  report: () => api.get<Report>('/maintenance/report'),
  dryRun: () => api.post<Report>('/maintenance/run', { dry_run: true }),
  run: () => api.post<{ started: boolean; progress: Progress }>('/maintenance/run', {}),
  progress: () => api.get<Progress>('/maintenance/progress'),
  runs: (limit = 10) => api.get<{ items: RunRow[] }>('/maintenance/runs', { limit }),
  backup: () => api.post<{ path: string; bytes: number }>('/maintenance/backup', {}),
  trash: () => api.get<{ items: TrashItem[]; retention_days: number }>('/trash'),
  restore: (jobId: string) => api.post<{ id: string; restored: boolean }>(`/trash/${encodeURIComponent(jobId)}/restore`, {}),
}

/** Bytes as people read them: 0 B, 812 KB, 3.4 MB, 12 GB. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '0 B'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`
}

/** Each category's share of a total, in percent, for a stacked bar (tiny non-zero shares stay visible). */
export function shares(usage: Partial<Record<Category, number>>, total: number): { category: Category; bytes: number; percent: number }[] {
  const out = []
  for (const category of CATEGORIES) {
    const bytes = usage[category] ?? 0
    if (bytes <= 0 || total <= 0) continue
    out.push({ category, bytes, percent: Math.max(0.6, (bytes / total) * 100) })
  }
  return out
}
