// The import of ComfyUI's past outputs (the owner's): status, start/resume, pause.
import { api } from './client'

export interface ImportRun {
  id: number
  status: 'running' | 'paused' | 'done' | 'failed' | string
  total: number
  done: number
  imported: number
  with_metadata: number
  known: number
  skipped: Record<string, number>
  metadata_ignored: Record<string, number>
  error: string | null
  started_at: string
  finished_at: string | null
}

export interface ImportStatus {
  available: boolean
  running: boolean
  run: ImportRun | null
}

export const imports = {
  status: () => api.get<ImportStatus>('/imports'),
  start: () => api.post<ImportStatus>('/imports/start', {}),
  pause: () => api.post<ImportStatus>('/imports/pause', {}),
}

/** Why files were left out, in words. */
export const SKIP_REASONS: Record<string, string> = {
  bad_name: 'names ComfyUI cannot serve',
  outside_folder: 'links leading outside the folder',
  broken_link: 'broken links',
  empty: 'empty files',
  not_an_image: 'not really images',
  too_large: 'over 256 MB',
  too_many_pixels: 'too many pixels',
  unreadable: 'unreadable',
  corrupt_pixels: 'damaged pixel data',
}

export function skipLabel(reason: string): string {
  return SKIP_REASONS[reason] ?? (reason.startsWith('corrupt_') ? 'damaged files' : reason.replace(/_/g, ' '))
}
