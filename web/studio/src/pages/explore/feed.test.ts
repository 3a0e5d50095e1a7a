import { describe, expect, it, vi } from 'vitest'
import { createFeed, type PageFetcher } from './feed'

type Item = { id: number; name: string }
const page = (ids: number[], next: string | null, stale = false) => ({
  items: ids.map((id) => ({ id, name: `#${id}` })),
  next_cursor: next,
  stale,
})

describe('cursor feed', () => {
  it('says whether it fetched anything (nothing before a query is set, nothing once done)', async () => {
    const feed = createFeed<Item>()
    expect(await feed.loadMore()).toBe(false)
    feed.reset(async () => page([1], null))
    expect(await feed.loadMore()).toBe(true)
    expect(await feed.loadMore()).toBe(false)
  })

  it('pages through with the server cursors and drops duplicate ids', async () => {
    const pages: Record<string, ReturnType<typeof page>> = {
      '': page([1, 2, 3], 'c1'),
      c1: page([3, 4, 5], 'c2'), // Civitai repeats the last item of a page
      c2: page([5, 6], null),
    }
    const fetch = vi.fn<PageFetcher<Item>>(async (cursor) => pages[cursor ?? ''])
    const feed = createFeed<Item>()
    feed.reset(fetch)
    await feed.loadMore()
    await feed.loadMore()
    await feed.loadMore()
    await feed.loadMore() // done: asks nothing
    expect(feed.items.value.map((i) => i.id)).toEqual([1, 2, 3, 4, 5, 6])
    expect(fetch.mock.calls.map((c) => c[0])).toEqual([null, 'c1', 'c2'])
    expect(feed.state.done).toBe(true)
  })

  it('ends on a cursor it already followed instead of looping', async () => {
    const fetch = vi.fn<PageFetcher<Item>>(async (cursor) => (cursor ? page([3, 4], 'c1') : page([1, 2], 'c1')))
    const feed = createFeed<Item>()
    feed.reset(fetch)
    await feed.loadMore()
    await feed.loadMore()
    expect(feed.state.done).toBe(true)
    await feed.loadMore()
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(feed.items.value.map((i) => i.id)).toEqual([1, 2, 3, 4])
  })

  it('follows on past a page of only duplicates', async () => {
    const pages: Record<string, ReturnType<typeof page>> = { '': page([1, 2], 'a'), a: page([1, 2], 'b'), b: page([3], null) }
    const feed = createFeed<Item>()
    feed.reset(async (c) => pages[c ?? ''])
    await feed.loadMore()
    await feed.loadMore()
    expect(feed.items.value.map((i) => i.id)).toEqual([1, 2, 3])
  })

  it('does one request at a time and shows the stale flag of the last page', async () => {
    let release: (v: ReturnType<typeof page>) => void = () => {}
    const fetch = vi.fn<PageFetcher<Item>>(() => new Promise((r) => (release = r)))
    const feed = createFeed<Item>()
    feed.reset(fetch)
    const a = feed.loadMore()
    void feed.loadMore()
    expect(fetch).toHaveBeenCalledTimes(1)
    release(page([1], 'n', true))
    await a
    expect(feed.state.stale).toBe(true)
  })

  it('ignores a page that answers an older query', async () => {
    let release: (v: ReturnType<typeof page>) => void = () => {}
    const feed = createFeed<Item>()
    feed.reset(() => new Promise((r) => (release = r)))
    const old = feed.loadMore()
    feed.reset(async () => page([9], null))
    release(page([1, 2], 'x'))
    await old
    expect(feed.items.value).toEqual([])
    await feed.loadMore()
    expect(feed.items.value.map((i) => i.id)).toEqual([9])
  })

  it('keeps the failed cursor to try again', async () => {
    let fail = true
    const fetch = vi.fn<PageFetcher<Item>>(async (cursor) => {
      if (cursor === 'c1' && fail) throw new Error('offline')
      return cursor ? page([3], null) : page([1, 2], 'c1')
    })
    const feed = createFeed<Item>()
    feed.reset(fetch)
    await feed.loadMore()
    await feed.loadMore()
    expect(feed.state.error).toBeInstanceOf(Error)
    expect(feed.state.loading).toBe(false)
    fail = false
    await feed.loadMore()
    expect(feed.state.error).toBe(null)
    expect(feed.items.value.map((i) => i.id)).toEqual([1, 2, 3])
  })
})
