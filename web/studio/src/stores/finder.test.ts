import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ApiClient } from '../api/client'
import type { Job, Page } from '../api/types'
import { createFinder, searchQuery, startOfWeek, type FindFilters } from './finder'
import { createJobsStore } from './jobs'

const job = (id: string, over: Partial<Job> = {}): Job => ({ id, state: 'done', prompt_text: 'a cat', created_at: '2026-11-25T18:00:00Z', images: [], ...over })
const none: FindFilters = { q: '', liked: false, action: null, date: 'any', board: null }

describe('filters → query string', () => {
  const now = new Date(2026, 10, 26, 15, 30) // Thursday 26 November 2026, local time

  it('is empty when nothing filters (the whole feed)', () => {
    expect(searchQuery(none, now)).toEqual({})
    expect(searchQuery({ ...none, q: '   ' }, now)).toEqual({})
  })

  it('sends the typed words, liked, the action slot', () => {
    expect(searchQuery({ ...none, q: '  red   fox ', liked: true, action: 'upscale' }, now)).toEqual({
      q: 'red fox',
      liked: 'true',
      action: 'upscale',
    })
  })

  it('turns today and this week into `since` at local midnight', () => {
    expect(searchQuery({ ...none, date: 'today' }, now).since).toBe(new Date(2026, 10, 26).toISOString())
    expect(searchQuery({ ...none, date: 'week' }, now).since).toBe(new Date(2026, 10, 23).toISOString()) // Monday
    expect(startOfWeek(new Date(2026, 10, 29, 23))).toEqual(new Date(2026, 10, 23)) // Sunday belongs to the week before
    expect(startOfWeek(new Date(2026, 10, 23, 1))).toEqual(new Date(2026, 10, 23))
  })

  it('builds the URL the client sends', () => {
    const url = new URL('http://x' + new ApiClient(fetch).url('/jobs/search', { ...searchQuery({ ...none, q: 'fox & hound', liked: true }), limit: 40, cursor: null }))
    expect(url.pathname).toBe('/studio/api/v1/jobs/search')
    expect(url.searchParams.get('q')).toBe('fox & hound')
    expect(url.searchParams.get('liked')).toBe('true')
    expect(url.searchParams.has('cursor')).toBe(false)
  })
})

describe('finder', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  function setup(pages: Record<string, Page<Job>>) {
    const calls: { query: Record<string, string>; cursor: string | null }[] = []
    const client = {
      searchJobs: vi.fn(async (query: Record<string, string>, cursor: string | null) => {
        calls.push({ query, cursor })
        return pages[cursor ?? 'first'] ?? { items: [], next_cursor: null }
      }),
    } as unknown as ApiClient
    const live = createJobsStore()
    const f = createFinder(live, { debounceMs: 200 })
    f.use(client)
    return { f, live, calls, client }
  }

  it('searches once the typing pauses, and pages by next_cursor', async () => {
    const { f, calls } = setup({
      first: { items: [job('j_3'), job('j_2')], next_cursor: 'j_2' },
      j_2: { items: [job('j_1')], next_cursor: null },
    })
    f.setText('c')
    f.setText('ca')
    f.setText('cat')
    expect(calls).toHaveLength(0)
    expect(f.active.value).toBe(false)
    expect(f.filtering.value).toBe(true)
    await vi.advanceTimersByTimeAsync(200)
    expect(calls).toEqual([{ query: { q: 'cat' }, cursor: null }])
    expect(f.active.value).toBe(true)
    expect(f.list().map((j) => j.id)).toEqual(['j_3', 'j_2'])
    expect(f.paging.hasMore).toBe(true)
    await f.loadMore()
    expect(calls[1]).toEqual({ query: { q: 'cat' }, cursor: 'j_2' })
    expect(f.list().map((j) => j.id)).toEqual(['j_3', 'j_2', 'j_1'])
    expect(f.paging.hasMore).toBe(false)
    await f.loadMore() // the last page was read
    expect(calls).toHaveLength(2)
  })

  it('searches at once when a filter changes; back to all clears everything', async () => {
    const { f, calls } = setup({ first: { items: [job('j_1')], next_cursor: null } })
    await f.setFilter({ liked: true, date: 'any' })
    expect(calls[0].query).toEqual({ liked: 'true' })
    await f.setFilter({ action: 'upscale' })
    expect(calls[1].query).toEqual({ liked: 'true', action: 'upscale' })
    await f.clear()
    expect(f.active.value).toBe(false)
    expect(f.filtering.value).toBe(false)
    expect(f.filters).toEqual(none)
    expect(f.list()).toEqual([])
    expect(calls).toHaveLength(2)
  })

  it('drops an answer to an older search', async () => {
    let release: (p: Page<Job>) => void = () => {}
    const slow = new Promise<Page<Job>>((r) => (release = r))
    const { f, client } = setup({})
    ;(client.searchJobs as ReturnType<typeof vi.fn>)
      .mockImplementationOnce(() => slow)
      .mockImplementationOnce(async () => ({ items: [job('j_new')], next_cursor: null }))
    const first = f.setFilter({ liked: true })
    await f.setFilter({ action: 'remix' })
    release({ items: [job('j_old')], next_cursor: null })
    await first
    expect(f.list().map((j) => j.id)).toEqual(['j_new'])
  })

  it('shows the live copy of a result the store holds, and forgets a deleted one', async () => {
    const { f, live } = setup({ first: { items: [job('j_1', { state: 'running' }), job('j_2')], next_cursor: null } })
    live.upsert(job('j_1', { state: 'done' }))
    await f.setFilter({ date: 'today' })
    expect(f.list().map((j) => j.state)).toEqual(['done', 'done'])
    f.remove('j_2')
    expect(f.list().map((j) => j.id)).toEqual(['j_1'])
  })

  it('keeps a failed page as an error to retry', async () => {
    const { f, client } = setup({})
    ;(client.searchJobs as ReturnType<typeof vi.fn>).mockRejectedValueOnce(new Error('offline'))
    await f.setFilter({ liked: true })
    expect(f.paging.error).toBeInstanceOf(Error)
    expect(f.paging.loading).toBe(false)
  })
})
