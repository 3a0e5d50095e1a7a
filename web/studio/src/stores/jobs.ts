// This user's jobs, keyed by id and ordered newest first, fed by GET /jobs pages and the event stream.
import { reactive, shallowReactive, shallowRef, toRaw } from 'vue'
import type { Image, Job, JobState, Progress, QueueCounts } from '../api/types'
import { normalizeQueue, type ApiClient } from '../api/client'

export const TERMINAL: ReadonlySet<JobState> = new Set(['done', 'error', 'interrupted', 'cancelled', 'rejected', 'lost'])

export type TransitionListener = (job: Job, previous: JobState | null) => void

/** newest first: created_at descending, then id descending */
export function compareJobs(a: Job, b: Job): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1
  return a.id === b.id ? 0 : a.id < b.id ? 1 : -1
}

const RANK: Record<string, number> = { queued: 0, running: 1 }
function rank(s: JobState): number {
  return RANK[s] ?? 2
}

function mergeImages(a: Image[] = [], b: Image[] = []): Image[] {
  if (!a.length) return b
  if (!b.length) return a
  const seen = new Set(b.map((i) => i.id))
  return [...b, ...a.filter((i) => !seen.has(i.id))]
}

export function createJobsStore() {
  const byId = shallowReactive(new Map<string, Job>())
  const order = shallowRef<string[]>([])
  const queue = reactive<QueueCounts>({ running: 0, pending: 0 })
  const paging = reactive({
    cursor: null as string | null,
    /** false once the last page was read */
    hasMore: true,
    loading: false,
    loaded: false,
    error: null as unknown,
  })
  const listeners = new Set<TransitionListener>()
  /** jobs updated from a page read or a resync: no toast of their own, but a shown one must follow */
  const quietListeners = new Set<(job: Job) => void>()

  /** While a page is applied, the order being built: one new array per page, not one per job. */
  let draft: string[] | null = null
  let drafted = false
  function setOrder(ids: string[]) {
    if (draft) {
      draft = ids
      drafted = true
    } else order.value = ids
  }
  function withDraft(fn: () => void) {
    draft = order.value.slice()
    drafted = false
    try {
      fn()
    } finally {
      const ids = draft
      draft = null
      if (drafted) order.value = ids
    }
  }

  function insertId(id: string, job: Job) {
    const ids = draft ?? order.value
    // binary search for the first existing job older than this one
    let lo = 0
    let hi = ids.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const other = byId.get(ids[mid])!
      if (compareJobs(other, job) < 0) lo = mid + 1
      else hi = mid
    }
    if (draft) {
      draft.splice(lo, 0, id)
      drafted = true
    } else order.value = [...ids.slice(0, lo), id, ...ids.slice(lo)]
  }

  function emit(job: Job, previous: JobState | null) {
    for (const l of listeners) l(job, previous)
  }

  /**
   * Put a job in the store. From the stream the incoming job wins; a page read or a submit answer only
   * fills gaps, since the stream may already know a later state (a job often starts running before
   * the answer to its POST arrives). A submit answer for a job the store lacks counts as news.
   */
  function upsert(job: Job, source: 'stream' | 'page' | 'submit' = 'stream'): Job {
    const prev = byId.get(job.id)
    if (prev && source !== 'stream') {
      if (rank(job.state) <= rank(prev.state) && !(TERMINAL.has(job.state) && !TERMINAL.has(prev.state))) {
        // not newer: keep the state we have, take only fields our copy lacks (an action's slot, say)
        const gaps = Object.entries(job).filter(([k, v]) => v != null && (prev as unknown as Record<string, unknown>)[k] == null)
        if (!gaps.length) return prev
        const filled: Job = { ...prev, ...Object.fromEntries(gaps) }
        byId.set(job.id, filled)
        return filled
      }
    }
    const next: Job = {
      ...job,
      images: mergeImages(prev?.images, job.images ?? []),
      progress: job.progress ?? (job.state === prev?.state ? prev?.progress : null) ?? null,
    }
    const oldPreview = prev?.progress?.preview_url
    if (oldPreview && oldPreview !== next.progress?.preview_url && oldPreview.startsWith('blob:')) URL.revokeObjectURL(oldPreview)
    byId.set(job.id, next)
    if (!prev) insertId(job.id, next)
    else if (prev.created_at !== next.created_at) {
      setOrder((draft ?? order.value).filter((x) => x !== job.id))
      insertId(job.id, next)
    }
    if (source !== 'page' && prev?.state !== next.state) emit(next, prev?.state ?? null)
    else if (source === 'page') for (const l of quietListeners) l(next)
    return next
  }

  function applyProgress(jobId: string, progress: Progress) {
    const prev = byId.get(jobId)
    if (!prev) return
    const state: JobState = prev.state === 'queued' ? 'running' : prev.state
    if (TERMINAL.has(prev.state)) return
    const next = { ...prev, state, progress: { ...prev.progress, ...progress } }
    byId.set(jobId, next)
    if (state !== prev.state) emit(next, prev.state)
  }

  function applyOutput(jobId: string, image: Image) {
    const prev = byId.get(jobId)
    if (!prev) return
    if (prev.images.some((i) => i.id === image.id)) return
    byId.set(jobId, { ...prev, images: [...prev.images, image] })
  }

  /** A latent preview (object URL) for the running job with this prompt id; the old URL is released. */
  function applyPreview(promptId: string, url: string): boolean {
    for (const id of order.value.slice(0, 200)) {
      const j = byId.get(id)!
      if (j.prompt_id === promptId && j.state === 'running') {
        const old = j.progress?.preview_url
        byId.set(id, { ...j, progress: { ...j.progress, preview_url: url } })
        if (old && old.startsWith('blob:')) URL.revokeObjectURL(old)
        return true
      }
    }
    return false
  }

  /** Queue positions from GET /queue: `[{job_id, position}]` for the pending entries. */
  function applyPositions(pending: { job_id?: string | null; position?: number | null }[]) {
    const pos = new Map<string, number>()
    for (const e of pending) if (e.job_id && typeof e.position === 'number') pos.set(e.job_id, e.position)
    for (const id of order.value) {
      const j = byId.get(id)!
      if (j.state !== 'queued') continue
      const p = pos.get(id) ?? null
      if (j.queue_position !== p) byId.set(id, { ...j, queue_position: p })
    }
  }

  /** Whether queue events carry this user's positions (then GET /queue is never needed for them). */
  const positionsInEvents = { value: false }

  function applyQueue(q: unknown) {
    const n = normalizeQueue(q)
    if (n) Object.assign(queue, n)
    const positions = q && typeof q === 'object' ? (q as { positions?: unknown }).positions : undefined
    if (positions && typeof positions === 'object' && !Array.isArray(positions)) {
      positionsInEvents.value = true
      applyPositions(
        Object.entries(positions as Record<string, unknown>).map(([job_id, position]) => ({
          job_id,
          position: typeof position === 'number' ? position : null,
        })),
      )
    }
  }

  function remove(jobId: string) {
    if (!byId.has(jobId)) return
    byId.delete(jobId)
    order.value = order.value.filter((x) => x !== jobId)
  }

  function clear() {
    byId.clear()
    order.value = []
  }

  /** Forget everything (another user signed in). */
  function reset() {
    clear()
    Object.assign(paging, { cursor: null, hasMore: true, loading: false, loaded: false, error: null })
    Object.assign(queue, { running: 0, pending: 0 })
    positionsInEvents.value = false
  }

  /**
   * `resync`: drop the local live state and use the server's snapshot. The snapshot holds this user's
   * unfinished jobs; finished jobs are history and stay. A job we thought unfinished that the snapshot
   * no longer has has ended meanwhile: it is dropped and `true` is returned, so the caller reads the
   * newest page again to learn how it ended.
   */
  function resync(jobs: Job[], q?: unknown): boolean {
    const kept = [...byId.values()].filter((j) => TERMINAL.has(j.state))
    const snapshot = new Set(jobs.map((j) => j.id))
    const vanished = [...byId.values()].some((j) => !TERMINAL.has(j.state) && !snapshot.has(j.id))
    clear()
    const all = new Map<string, Job>()
    for (const j of kept) if (!snapshot.has(j.id)) all.set(j.id, j)
    for (const j of jobs) all.set(j.id, { ...j, images: j.images ?? [] })
    const sorted = [...all.values()].sort(compareJobs)
    for (const j of sorted) byId.set(j.id, j)
    order.value = sorted.map((j) => j.id)
    for (const j of jobs) for (const l of quietListeners) l(j)
    if (q) applyQueue(q)
    if (vanished) for (const l of resyncListeners) l()
    return vanished
  }
  const resyncListeners = new Set<() => void>()

  /** A page read: its jobs go in with one change of the order, not one per job. */
  function upsertPage(items: Job[]) {
    withDraft(() => {
      for (const j of items) upsert(j, 'page')
    })
  }

  /** Read the newest page again (after a resync or a fresh stream), keeping the paging position. */
  async function refreshTop(client: ApiClient, limit = 40) {
    try {
      const page = await client.jobs(null, limit)
      upsertPage(page.items ?? [])
      if (!paging.loaded) {
        paging.cursor = page.next_cursor ?? null
        paging.hasMore = !!page.next_cursor
        paging.loaded = true
      }
    } catch (e) {
      paging.error = e
    }
  }

  /** Read the next page of GET /jobs (the first one when nothing was read yet). */
  async function loadMore(client: ApiClient, limit = 40) {
    if (paging.loading || (paging.loaded && !paging.hasMore)) return
    paging.loading = true
    paging.error = null
    try {
      const page = await client.jobs(paging.loaded ? paging.cursor : null, limit)
      upsertPage(page.items ?? [])
      paging.cursor = page.next_cursor ?? null
      paging.hasMore = !!page.next_cursor
      paging.loaded = true
    } catch (e) {
      paging.error = e
    } finally {
      paging.loading = false
    }
  }

  /** Position among this user's queued jobs (1 = next), from the server when it says so. */
  function queuePosition(job: Job): number | null {
    if (job.state !== 'queued') return null
    if (typeof job.queue_position === 'number') return job.queue_position
    let pos = 0
    for (const id of order.value) {
      const j = byId.get(id)!
      if (j.state === 'queued' && compareJobs(j, job) >= 0) pos++
    }
    return pos || null
  }

  return {
    byId,
    order,
    queue,
    paging,
    upsert,
    applyProgress,
    applyOutput,
    applyQueue,
    applyPreview,
    applyPositions,
    positionsInEvents,
    remove,
    clear,
    reset,
    resync,
    refreshTop,
    onResyncGap(l: () => void) {
      resyncListeners.add(l)
      return () => resyncListeners.delete(l)
    },
    loadMore,
    queuePosition,
    get(id: string) {
      return byId.get(id)
    },
    /**
     * Every job, newest first. Depends on the order and on any change to any job, through one
     * dependency (the map's size tracks all its writes) instead of one per job: 10,000 tracked reads
     * on every page made each page cost more than the last.
     */
    list(): Job[] {
      void byId.size
      const raw = toRaw(byId)
      return order.value.map((id) => raw.get(id)!).filter(Boolean)
    },
    onQuietUpdate(l: (job: Job) => void) {
      quietListeners.add(l)
      return () => quietListeners.delete(l)
    },
    onTransition(l: TransitionListener) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
  }
}

export type JobsStore = ReturnType<typeof createJobsStore>

export const jobs = createJobsStore()
