// Toasts: one per active job, updated in place as the job moves on; finished jobs collapse into one
// "n jobs finished" toast that times out; errors stay until dismissed; plus plain messages.
import { reactive } from 'vue'
import type { Job } from '../api/types'

export type ToastKind = 'info' | 'progress' | 'success' | 'error'

export interface Toast {
  id: string
  /** the one job this toast is about (a group of finished jobs has none) */
  jobId: string | null
  /** the finished jobs a group toast stands for */
  jobIds: string[]
  kind: ToastKind
  title: string
  message: string
  timer: ReturnType<typeof setTimeout> | null
}

export const MAX_TOASTS = 5
/** How long a finished-jobs toast stays after the last job joined it. */
export const FINISHED_MS = 5000
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

export function dismissAll() {
  for (const t of [...toasts]) dismiss(t.id)
}

function schedule(t: Toast, ms: number | null) {
  if (t.timer) clearTimeout(t.timer)
  t.timer = ms == null ? null : setTimeout(() => dismiss(t.id), ms)
}

/** Over the limit, the oldest toast that is not an error goes first: errors wait for the user. */
function trim() {
  while (toasts.length > MAX_TOASTS) {
    let i = toasts.length - 1
    while (i > 0 && toasts[i].kind === 'error') i--
    dismiss(toasts[i].id)
  }
}

type ToastFields = Omit<Toast, 'timer' | 'jobIds'> & { jobIds?: string[] }

function put(t: ToastFields, ms: number | null): Toast {
  let existing = toasts.find((x) => x.id === t.id)
  if (existing) {
    Object.assign(existing, { jobIds: [], ...t })
  } else {
    toasts.unshift({ jobIds: [], ...t, timer: null })
    existing = toasts[0]
    trim()
  }
  schedule(existing, ms)
  return existing
}

export function toast(message: string, kind: ToastKind = 'info', title = '') {
  const heading = title || (kind === 'error' ? 'Error' : 'Notice')
  // The same message again (a retry failing the same way) refreshes the toast shown rather than stacking another.
  const same = toasts.find((t) => t.jobId === null && !t.jobIds.length && t.kind === kind && t.title === heading && t.message === message)
  return put({ id: same?.id ?? `t${++seq}`, jobId: null, kind, title: heading, message }, kind === 'error' ? null : 5000)
}

// state → kind, title, how long it stays (null: until it changes or the user dismisses it)
const JOB_TEXT: Record<string, [ToastKind, string, number | null]> = {
  queued: ['progress', 'Queued', null],
  running: ['progress', 'Generating', null],
  done: ['success', 'Done', FINISHED_MS],
  error: ['error', 'Failed', null],
  rejected: ['error', 'Rejected by ComfyUI', null],
  interrupted: ['info', 'Interrupted', 6000],
  cancelled: ['info', 'Cancelled', 4000],
  lost: ['error', 'Lost by ComfyUI', null],
}

function finishedGroup(): Toast | undefined {
  return toasts.find((t) => t.jobIds.length > 0)
}

function finishedTitle(n: number) {
  return n === 1 ? JOB_TEXT.done[1] : `${n} jobs finished`
}

/** A finished job joins the one finished-jobs toast (its own toast becomes that toast when there is none). */
function finish(job: Job, own: Toast | undefined) {
  const group = finishedGroup()
  if (group && group !== own) {
    if (own) dismiss(own.id)
    if (!group.jobIds.includes(job.id)) group.jobIds.push(job.id)
    put({ id: group.id, jobId: null, jobIds: group.jobIds, kind: 'success', title: finishedTitle(group.jobIds.length), message: '' }, FINISHED_MS)
    toasts.splice(toasts.indexOf(group), 1)
    toasts.unshift(group) // the newest news on top
    return
  }
  // In place: the job's toast turns into the group, so the job never has two toasts at once.
  put({ id: own?.id ?? `job:${job.id}:${++seq}`, jobId: job.id, jobIds: [job.id], kind: 'success', title: finishedTitle(1), message: '' }, FINISHED_MS)
}

/** Show (or update) the job's toast for its current state. */
export function notifyJob(job: Job) {
  const own = toasts.find((x) => x.jobId === job.id || (x.jobIds.length === 1 && x.jobIds[0] === job.id))
  if (job.state === 'done') {
    finish(job, own)
    return
  }
  const inGroup = toasts.find((x) => x.jobIds.length > 1 && x.jobIds.includes(job.id))
  if (inGroup) {
    // finished once and running again (a re-queue): out of the group, its own toast again
    inGroup.jobIds.splice(inGroup.jobIds.indexOf(job.id), 1)
    const only = inGroup.jobIds.length === 1 ? inGroup.jobIds[0] : null
    Object.assign(inGroup, { title: finishedTitle(inGroup.jobIds.length), jobId: only })
  }
  const [kind, title, ms] = JOB_TEXT[job.state] ?? ['info', job.state, 6000]
  const detail = job.state === 'error' || job.state === 'rejected' ? job.error?.message || '' : ''
  put({ id: own?.id ?? `job:${job.id}:${++seq}`, jobId: job.id, kind, title, message: detail }, ms)
}

/** Bring an already shown job toast up to date (after a page read or resync); never opens one. */
export function refreshJobToast(job: Job) {
  const t = toasts.find((x) => x.jobId === job.id)
  if (t && JOB_TEXT[job.state]?.[1] !== t.title) notifyJob(job)
}
