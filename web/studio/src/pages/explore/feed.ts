// One cursor-paged list of Civitai results: pages appended in order, duplicates dropped by id (Civitai's
// paging repeats items), a repeated cursor ends the list, and a page that answers an older query is ignored.
import { reactive, shallowRef } from 'vue'
import type { CivitaiPage } from '../../api/civitai'

export type PageFetcher<T> = (cursor: string | null, signal: AbortSignal) => Promise<CivitaiPage<T>>

export function createFeed<T extends { id: number }>() {
  const items = shallowRef<T[]>([])
  const seen = new Set<number>()
  const cursorsUsed = new Set<string>()
  const state = reactive({
    cursor: null as string | null,
    done: false,
    loading: false,
    loaded: false,
    error: null as unknown,
    /** the server answered from its cache because Civitai is unreachable */
    stale: false,
  })
  let fetcher: PageFetcher<T> | null = null
  let ctrl: AbortController | null = null
  let generation = 0

  /** Start over with a new query (its first page is loaded by the next `loadMore`). */
  function reset(next: PageFetcher<T>) {
    ctrl?.abort()
    ctrl = null
    generation++
    fetcher = next
    items.value = []
    seen.clear()
    cursorsUsed.clear()
    Object.assign(state, { cursor: null, done: false, loading: false, loaded: false, error: null, stale: false })
  }

  /** Append a page; returns how many new items it brought. */
  function append(page: CivitaiPage<T>): number {
    const fresh: T[] = []
    for (const it of page.items ?? []) {
      if (!it || typeof it.id !== 'number' || seen.has(it.id)) continue
      seen.add(it.id)
      fresh.push(it)
    }
    if (fresh.length) items.value = items.value.concat(fresh)
    const next = page.next_cursor ?? null
    // a cursor we already followed would loop for ever: the list ends there
    state.done = next === null || cursorsUsed.has(next)
    state.cursor = state.done ? null : next
    state.stale = !!page.stale
    state.loaded = true
    return fresh.length
  }

  /** The next page; true when one was fetched (false: nothing to do, or it failed, or the query changed). */
  async function loadMore(): Promise<boolean> {
    if (!fetcher || state.loading || state.done) return false
    const gen = generation
    let from: string | null = null
    const c = new AbortController()
    ctrl = c
    state.loading = true
    state.error = null
    try {
      // a page of only duplicates brings nothing to show: follow on, a few times at most
      for (let hops = 0; hops < 3; hops++) {
        from = state.cursor
        if (from) cursorsUsed.add(from)
        const page = await fetcher(from, c.signal)
        if (gen !== generation) return false
        if (append(page) > 0 || state.done) break
      }
      return true
    } catch (e) {
      if (gen !== generation || (e instanceof DOMException && e.name === 'AbortError')) return false
      state.error = e // the failed cursor stays: the next loadMore tries it again
      if (from) cursorsUsed.delete(from)
      return false
    } finally {
      if (gen === generation) {
        state.loading = false
        ctrl = null
      }
    }
  }

  return { items, state, reset, loadMore, append }
}

export type Feed<T extends { id: number }> = ReturnType<typeof createFeed<T>>
