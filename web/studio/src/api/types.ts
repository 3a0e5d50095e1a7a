// Objects of the HTTP API (docs/api.md). Fields the contract does not pin down are optional.

export type JobState =
  | 'queued'
  | 'running'
  | 'done'
  | 'error'
  | 'interrupted'
  | 'cancelled'
  | 'rejected'
  | 'lost'

export interface Progress {
  node?: string | null
  value?: number
  max?: number
  overall?: number
  /** latent preview, when the server offers one (data: or same-origin URL) */
  preview_url?: string | null
}

export interface JobError {
  type?: string
  message?: string
  node_id?: string | null
  node_type?: string | null
}

export interface Image {
  id: string
  job_id: string | null
  kind: 'output' | 'upload' | string
  width: number
  height: number
  mime: string
  url: string
  thumb_url: string
  created_at: string
  /** the user marked it as a favourite (PUT/DELETE /images/{id}/like) */
  liked?: boolean
  /** maintenance may remove its file when storage is over quota (PUT/DELETE /images/{id}/expirable) */
  expirable?: boolean
  /** maintenance removed its file (Trash retention or quota); the row and thumbnail stay */
  purged?: boolean
}

export interface Job {
  id: string
  prompt_id?: string | null
  state: JobState
  prompt_text?: string | null
  created_at: string
  started_at?: string | null
  finished_at?: string | null
  progress?: Progress | null
  error?: JobError | null
  node_errors?: Record<string, unknown> | null
  replay_of?: string | null
  images: Image[]
  /** position in the pending queue (1 = next), when the server reports it */
  queue_position?: number | null
  /** queued outside the studio (ComfyUI's own editor, another client) */
  foreign?: boolean
  /** the action slot that made it (upscale, vary_subtle…), and the image it ran on */
  action_slot?: string | null
  parent_image_id?: string | null
  /** an edit's mask, when the job ran one */
  mask_image_id?: string | null
  /** an action run's parameter values */
  parameters?: Record<string, unknown> | null
  /** what this job ran of a prompt that made several (permutations, --repeat) */
  expansion?: JobExpansion | null
}

export interface JobExpansion {
  text: string
  index: number
  count: number
  codes: Record<string, unknown>
}

/** What a submit answers: the Job, or every Job when the prompt made several. */
export type Submitted = Job | { jobs: Job[]; count: number }

/** The jobs of a submit's answer, in order. */
export function submittedJobs(r: Submitted | { job: Job }): Job[] {
  if ('jobs' in r && Array.isArray(r.jobs)) return r.jobs
  if ('job' in r && r.job) return [r.job]
  return [r as Job]
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface QueueCounts {
  running: number
  pending: number
}

export interface User {
  id?: string | number
  username: string
  role?: string
}

export interface Session {
  user: User | null
  csrf_token: string
  /** first run on a network: the owner must be created with the one-time setup code */
  setup_required?: boolean
  login_required?: boolean
  /** a loopback owner session opened without a password */
  local?: boolean
}

export interface ErrorDetail {
  loc?: (string | number)[]
  message?: string
  type?: string
  node_id?: string
  class_type?: string
  errors?: unknown[]
}

export interface Suggestion {
  label: string
  insert: string
  kind: 'code' | 'value'
  description?: string
  type?: string
}

export interface SuggestResult {
  items: Suggestion[]
  replace: { start: number; end: number }
}

export interface PreviewToken {
  code: string
  raw: string
  start: number
  end: number
  value: unknown
}

export interface PreviewSpanMessage {
  start: number
  end: number
  message: string
}

export interface PromptPreview {
  clean_text: string
  tokens: PreviewToken[]
  errors: PreviewSpanMessage[]
  warnings: (PreviewSpanMessage | string)[]
  patches: unknown[]
  /** how many jobs a submit makes (permutations × --repeat) */
  count?: number
  expansions?: PreviewExpansion[]
}

export interface PreviewExpansion {
  text: string
  clean_text: string
  /** the multi-prompt translation the encoder reads (null without `::` weights) */
  positive: string | null
  negative: string | null
  codes: Record<string, unknown>
  patches: { op: string; path: string; value?: unknown }[]
}

export interface ActionSlot {
  slot: string
  label: string
  icon?: string
  /** runs on an image (false: a text-only action such as generate) */
  needs_image?: boolean
  /** needs a painted mask: run from the Edit page, not from a tile */
  needs_mask?: boolean
  /** false when the action can't run now; `problem` says why */
  ready?: boolean
  problem?: string | null
  /** the values a run may set (`{name, type, default, min, max}`), sent as `parameters` to POST /actions/{slot}/run */
  parameters?: ActionParameter[]
}

export interface ActionParameter {
  name: string
  type?: string
  default?: unknown
  min?: number
  max?: number
  step?: number
  label?: string
}

export type BulkOp = 'delete' | 'like' | 'unlike'

/** one of your boards: a named collection of gallery images (GET /boards) */
export interface Board {
  id: string
  name: string
  /** how many of its images are in the gallery */
  count: number
  /** its newest image */
  cover: { id: string; thumb_url: string } | null
  created_at: string
  updated_at: string
}

export interface BoardChange {
  board: Board
  added: string[]
  removed: string[]
  failed: { id: string; code: string; message: string }[]
}

/** POST /jobs/bulk: each job succeeds or fails on its own */
export interface BulkResult {
  op: BulkOp
  done: string[]
  failed: { id: string; code: string; message: string }[]
}
