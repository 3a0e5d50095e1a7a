// Toasts: one per job, updated in place as the job moves on; plus plain messages.
import { reactive } from 'vue'
import type { Job } from '../api/types'

export type ToastKind = 'info' | 'progress' | 'success' | 'error'

export interface Toast {
  id: string
  jobId: string | null
  kind: ToastKind
  title: string
  message: string
  timer: ReturnType<typeof setTimeout> | null
}

export const MAX_TOASTS = 5
export const toasts = reactive<Toast[]>([])
let seq = 0

export function dismiss(id: string) {
  const i = toasts.findIndex((t) => t.id === id)
  if (i >= 0) {
    const t = toasts[i]
    if (t.timer) clearTimeout(t.timer)
    toasts.splice(i, 1)
  }
}

function schedule(t: Toast, ms: number | null) {
  if (t.timer) clearTimeout(t.timer)
  t.timer = ms == null ? null : setTimeout(() => dismiss(t.id), ms)
}

function put(t: Omit<Toast, 'timer'>, ms: number | null): Toast {
  let existing = toasts.find((x) => x.id === t.id)
  if (existing) {
    Object.assign(existing, t)
  } else {
    toasts.unshift({ ...t, timer: null })
    existing = toasts[0]
    while (toasts.length > MAX_TOASTS) dismiss(toasts[toasts.length - 1].id)
  }
  schedule(existing, ms)
  return existing
}

export function toast(message: string, kind: ToastKind = 'info', title = '') {
  return put({ id: `t${++seq}`, jobId: null, kind, title: title || (kind === 'error' ? 'Error' : 'Notice'), message }, kind === 'error' ? 10000 : 5000)
}

const JOB_TEXT: Record<string, [ToastKind, string, number | null]> = {
  queued: ['progress', 'Queued', null],
  running: ['progress', 'Generating', null],
  done: ['success', 'Done', 5000],
  error: ['error', 'Failed', 12000],
  rejected: ['error', 'Rejected by ComfyUI', 12000],
  interrupted: ['info', 'Interrupted', 6000],
  cancelled: ['info', 'Cancelled', 4000],
  lost: ['error', 'Lost by ComfyUI', 12000],
}

/** Show (or update) the job's toast for its current state. */
export function notifyJob(job: Job) {
  const [kind, title, ms] = JOB_TEXT[job.state] ?? ['info', job.state, 6000]
  const detail = job.state === 'error' || job.state === 'rejected' ? job.error?.message || '' : ''
  put({ id: `job:${job.id}`, jobId: job.id, kind, title, message: detail }, ms)
}

/** Bring an already shown job toast up to date (after a page read or resync); never opens one. */
export function refreshJobToast(job: Job) {
  const t = toasts.find((x) => x.jobId === job.id)
  if (t && JOB_TEXT[job.state]?.[1] !== t.title) notifyJob(job)
}
