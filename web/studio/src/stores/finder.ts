// Finding past work: the feed's search and filters (GET /jobs/search), cursor-paged like GET /jobs.
// Results keep their own order; a result the live store also holds is shown from there, so the
// stream's updates (a job finishing, a like) reach both views.
import { computed, reactive, shallowReactive, shallowRef } from 'vue'
import type { ApiClient } from '../api/client'
import type { Job } from '../api/types'
import { jobs as liveJobs, type JobsStore } from './jobs'

export type DateRange = 'any' | 'today' | 'week'

export interface FindFilters {
  /** full-text over prompts: every word, the last as a prefix */
  q: string
  /** only jobs with a liked image */
  liked: boolean
  /** only runs of this action slot */
  action: string | null
  date: DateRange
  /** only jobs with an image in this board */
  board: string | null
}

/** local midnight at the start of this calendar week (Monday) */
export function startOfWeek(now: Date): Date {
  const d = new Date(now.getFullYear(), now.getMonth(), now.getDate())
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7))
  return d
}

/** The query string of GET /jobs/search for these filters; empty when nothing filters. */
export function searchQuery(f: FindFilters, now: Date = new Date()): Record<string, string> {
  const q: Record<string, string> = {}
  const text = f.q.trim().replace(/\s+/g, ' ')
  if (text) q.q = text.slice(0, 500)
  if (f.liked) q.liked = 'true'
  if (f.action) q.action = f.action
  if (f.board) q.board_id = f.board
  if (f.date === 'today') q.since = new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString()
  else if (f.date === 'week') q.since = startOfWeek(now).toISOString()
  return q
}

export function createFinder(live: JobsStore = liveJobs, opts: { debounceMs?: number; pageSize?: number } = {}) {
  const debounceMs = opts.debounceMs ?? 250
  const pageSize = opts.pageSize ?? 40
  const filters = reactive<FindFilters>({ q: '', liked: false, action: null, date: 'any', board: null })
  /** the filters the shown results answer (the typed text runs ahead of it while debouncing) */
  const applied = shallowRef<Record<string, string>>({})
  const byId = shallowReactive(new Map<string, Job>())
  const ids = shallowRef<string[]>([])
  const paging = reactive({
    cursor: null as string | null,
    hasMore: false,
    loading: false,
    loaded: false,
    error: null as unknown,
  })
  /** the feed shows results instead of everything */
  const active = computed(() => Object.keys(applied.value).length > 0)
  /** filters are set (the results may still be on their way) */
  const filtering = computed(() => Object.keys(searchQuery(filters)).length > 0)
  let client: ApiClient | null = null
  let generation = 0
  let timer: ReturnType<typeof setTimeout> | null = null
  let ctrl: AbortController | null = null

  function job(id: string): Job | undefined {
    return live.byId.get(id) ?? byId.get(id)
  }

  function list(): Job[] {
    const out: Job[] = []
    for (const id of ids.value) {
      const j = job(id)
      if (j) out.push(j)
    }
    return out
  }

  async function fetchPage(first: boolean) {
    if (!client) return
    const gen = generation
    ctrl?.abort()
    const c = new AbortController()
    ctrl = c
    paging.loading = true
    paging.error = null
    try {
      const page = await client.searchJobs(applied.value, first ? null : paging.cursor, pageSize, c.signal)
      if (gen !== generation) return
      const fresh: string[] = []
      for (const j of page.items ?? []) {
        byId.set(j.id, { ...j, images: j.images ?? [] })
        fresh.push(j.id)
      }
      const seen = new Set(first ? [] : ids.value)
      ids.value = [...(first ? [] : ids.value), ...fresh.filter((id) => !seen.has(id))]
      paging.cursor = page.next_cursor ?? null
      paging.hasMore = !!page.next_cursor
      paging.loaded = true
    } catch (e) {
      if (gen !== generation || (e instanceof DOMException && e.name === 'AbortError')) return
      paging.error = e
    } finally {
      if (gen === generation) paging.loading = false
    }
  }

  /** Search with the current filters now (a new first page). */
  function run() {
    if (timer) clearTimeout(timer)
    timer = null
    generation++
    const q = searchQuery(filters)
    applied.value = q
    byId.clear()
    ids.value = []
    Object.assign(paging, { cursor: null, hasMore: false, loaded: false, error: null, loading: false })
    if (!Object.keys(q).length) {
      ctrl?.abort()
      return Promise.resolve()
    }
    return fetchPage(true)
  }

  function schedule(delay: number) {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => void run(), delay)
  }

  return {
    filters,
    applied,
    ids,
    byId,
    paging,
    active,
    filtering,
    job,
    list,
    run,
    /** the client searches go through (set once by the page) */
    use(c: ApiClient) {
      client = c
    },
    /** typing: searched once the typing pauses */
    setText(q: string) {
      filters.q = q
      schedule(debounceMs)
    },
    /** a filter chip: searched at once */
    setFilter(patch: Partial<Omit<FindFilters, 'q'>>) {
      Object.assign(filters, patch)
      return run()
    },
    /** the next page of results */
    loadMore() {
      if (!active.value || paging.loading || !paging.hasMore || paging.error) return Promise.resolve()
      return fetchPage(false)
    },
    /** back to all: no filters, the whole feed */
    clear() {
      Object.assign(filters, { q: '', liked: false, action: null, date: 'any', board: null })
      return run()
    },
    /** a job deleted meanwhile */
    remove(id: string) {
      if (!byId.has(id)) return
      byId.delete(id)
      ids.value = ids.value.filter((x) => x !== id)
    },
  }
}

export type Finder = ReturnType<typeof createFinder>

export const finder = createFinder()
