// Civitai through the studio (/studio/api/v1/civitai/…): browsing, the key, "generate from this prompt"
// and model downloads. The studio proxies, throttles and caches Civitai and hands out its own cursors.
import { api } from './client'
import type { Download } from '../stores/downloads'

export type NsfwLevel = 'none' | 'soft' | 'mature' | 'x'
export const NSFW_LEVELS: NsfwLevel[] = ['none', 'soft', 'mature', 'x']
export const NSFW_LABELS: Record<NsfwLevel, string> = { none: 'Safe', soft: 'Soft', mature: 'Mature', x: 'X' }

/** The levels a user may pick: never above their `civitai_nsfw` setting. */
export function allowedNsfw(max: unknown): NsfwLevel[] {
  const i = NSFW_LEVELS.indexOf(max as NsfwLevel)
  return NSFW_LEVELS.slice(0, i < 0 ? 1 : i + 1)
}

/** `wanted`, lowered to `max` when it is above it (or unknown). */
export function clampNsfw(wanted: unknown, max: unknown): NsfwLevel {
  const allowed = allowedNsfw(max)
  return allowed.includes(wanted as NsfwLevel) ? (wanted as NsfwLevel) : allowed[allowed.length - 1]
}

export interface CivitaiMeta {
  prompt: string | null
  negative_prompt: string | null
  sampler: string | null
  steps: number | null
  cfg_scale: number | null
  seed: number | null
  width: number | null
  height: number | null
  clip_skip: number | null
  model: string | null
}

export interface CivitaiResource {
  type: 'checkpoint' | 'lora' | 'embedding' | 'vae' | 'other' | string
  name: string
  hash: string | null
  model_version_id: number | null
  weight: number | null
}

export interface CivitaiImage {
  id: number
  url: string
  thumb_url: string
  width: number | null
  height: number | null
  nsfw_level: string
  username: string | null
  created_at: string | null
  post_id: number | null
  page_url: string
  stats: { likes: number; hearts: number; comments: number; laughs: number; cries: number }
  meta: CivitaiMeta | null
  resources: CivitaiResource[]
}

export interface CivitaiFile {
  id: number
  name: string
  size_kb: number
  sha256: string | null
  type: string
  primary: boolean
}

export interface CivitaiVersion {
  id: number
  name: string
  base_model: string
  page_url: string
  files: CivitaiFile[]
}

export interface CivitaiModel {
  id: number
  name: string
  type: string
  nsfw: boolean
  creator: string | null
  tags: string[]
  page_url: string
  stats: { downloads: number; likes: number; rating: number }
  image: { url: string; thumb_url: string; width: number | null; height: number | null } | null
  versions: CivitaiVersion[]
}

export interface CivitaiPage<T> {
  items: T[]
  next_cursor: string | null
  stale?: boolean
}

export interface CivitaiStatus {
  key_set: boolean
  key_set_at: string | null
  key_valid: boolean | null
  base_url: string
  rate: number
}

export interface PromptResource {
  type: string
  name: string
  hash: string | null
  model_version_id: number | null
  present: boolean
  local_name: string | null
  folder: string
  page_url: string | null
}

export interface PromptFromImage {
  text: string
  warnings: string[]
  resources: PromptResource[]
}

export type Query = Record<string, string | number | null | undefined>

const IMAGE_SORTS = ['Most Reactions', 'Most Comments', 'Newest'] as const
const MODEL_SORTS = ['Highest Rated', 'Most Downloaded', 'Newest'] as const
export const SORTS = { images: IMAGE_SORTS, models: MODEL_SORTS }
export const PERIODS = ['AllTime', 'Year', 'Month', 'Week', 'Day'] as const
export const PERIOD_LABELS: Record<string, string> = { AllTime: 'All time', Year: 'Year', Month: 'Month', Week: 'Week', Day: 'Today' }
export const MODEL_TYPES = ['Checkpoint', 'LORA', 'TextualInversion', 'VAE', 'Upscaler'] as const

export const civitai = {
  images: (q: Query, signal?: AbortSignal) => api.get<CivitaiPage<CivitaiImage>>('/civitai/images', q, signal),
  models: (q: Query, signal?: AbortSignal) => api.get<CivitaiPage<CivitaiModel>>('/civitai/models', q, signal),
  tags: (query: string, signal?: AbortSignal) =>
    api.get<{ items: { name: string; count: number }[] }>('/civitai/tags', { query, limit: 10 }, signal),
  creators: (query: string, signal?: AbortSignal) =>
    api.get<{ items: { username: string; image_url: string | null }[] }>('/civitai/creators', { query, limit: 10 }, signal),
  prompt: (image: CivitaiImage) => api.post<PromptFromImage>('/civitai/prompt', { image }),

  status: () => api.get<CivitaiStatus>('/civitai/status'),
  setKey: (key: string) => api.put<{ key_set: boolean; key_set_at: string | null; key_valid: boolean | null }>('/civitai/key', { key }),
  testKey: () => api.post<{ key_valid: boolean }>('/civitai/key/test', {}),
  deleteKey: () => api.del<{ key_set: boolean }>('/civitai/key'),

  download: (modelVersionId: number, fileId: number | null = null) =>
    api.post<Download>('/civitai/downloads', { model_version_id: modelVersionId, file_id: fileId }),
  downloads: () => api.get<{ items: Download[] }>('/civitai/downloads'),
  cancelDownload: (id: string) => api.del<Download>(`/civitai/downloads/${encodeURIComponent(id)}`),
}
