import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ApiClient } from '../api/client'
import type { Board, BoardChange, Job, Page } from '../api/types'
import { createBoards, dragPayload, droppedImages, nameProblem } from './boards'
import { createFinder, searchQuery } from './finder'
import { createJobsStore } from './jobs'
import { toasts } from './toasts'

const ID = (c: string) => `i_${c.repeat(26)}`
const board = (id: string, name: string, count = 0): Board => ({
  id,
  name,
  count,
  cover: null,
  created_at: '2026-12-01T10:00:00Z',
  updated_at: '2026-12-01T10:00:00Z',
})
const image = (id: string, job_id: string) => ({
  id,
  job_id,
  kind: 'output',
  width: 512,
  height: 512,
  mime: 'image/png',
  url: `/studio/api/v1/images/${id}`,
  thumb_url: `/studio/api/v1/images/${id}/thumb`,
  created_at: '2026-11-25T18:00:00Z',
})
const job = (id: string, images: ReturnType<typeof image>[]): Job => ({ id, state: 'done', prompt_text: 'a cat', created_at: '2026-11-25T18:00:00Z', images })

function setup(stored: Board[] = [], pages: Page<Job> = { items: [], next_cursor: null }) {
  let boards = [...stored]
  const searches: Record<string, string>[] = []
  const client = {
    listBoards: vi.fn(async () => ({ items: boards })),
    createBoard: vi.fn(async (name: string) => {
      const b = board(`b_${boards.length}`, name)
      boards.push(b)
      return b
    }),
    renameBoard: vi.fn(async (id: string, name: string) => ({ ...boards.find((b) => b.id === id)!, name })),
    deleteBoard: vi.fn(async (id: string) => {
      boards = boards.filter((b) => b.id !== id)
      return { id, deleted: true, removed: 0 }
    }),
    changeBoardImages: vi.fn(async (id: string, change: { add?: string[]; remove?: string[] }): Promise<BoardChange> => {
      const b = boards.find((x) => x.id === id)!
      const added = (change.add ?? []).filter((i) => i !== ID('X'))
      const failed = (change.add ?? []).filter((i) => i === ID('X')).map((i) => ({ id: i, code: 'not_found', message: 'Image not found' }))
      b.count += added.length - (change.remove ?? []).length
      return { board: { ...b }, added, removed: change.remove ?? [], failed }
    }),
    searchJobs: vi.fn(async (query: Record<string, string>) => {
      searches.push(query)
      return pages
    }),
  } as unknown as ApiClient
  const finder = createFinder(createJobsStore())
  finder.use(client)
  const store = createBoards({ client, finder })
  return { store, client, finder, searches }
}

beforeEach(() => {
  toasts.splice(0)
})

describe('board names', () => {
  it('are trimmed, at most 64 characters, without control characters, unique whatever their case', () => {
    const mine = [board('b_1', 'Cats')]
    expect(nameProblem('  Dogs ', mine)).toBeNull()
    expect(nameProblem('   ', mine)).toMatch(/name/)
    expect(nameProblem('x'.repeat(65), mine)).toMatch(/64/)
    expect(nameProblem('x'.repeat(64), mine)).toBeNull()
    expect(nameProblem('tab\there', mine)).toMatch(/control/)
    expect(nameProblem('zero\u200bwidth', mine)).toMatch(/control/)
    expect(nameProblem(' CATS', mine)).toMatch(/already/)
    expect(nameProblem('cats', mine, 'b_1')).toBeNull() // renaming a board to its own name in another case
  })
})

describe('dragging tiles onto boards', () => {
  it('carries the tile, or every picked image when the tile is picked', () => {
    const a = image(ID('A'), 'j_a')
    const b = image(ID('B'), 'j_b')
    expect(droppedImages(dragPayload(a, []))).toEqual([{ id: a.id, job_id: 'j_a' }])
    expect(droppedImages(dragPayload(a, [b, a]))).toEqual([
      { id: b.id, job_id: 'j_b' },
      { id: a.id, job_id: 'j_a' },
    ])
    expect(droppedImages(dragPayload(a, [b]))).toEqual([{ id: a.id, job_id: 'j_a' }]) // not picked: only itself
  })

  it('ignores what is not a tile', () => {
    expect(droppedImages('')).toEqual([])
    expect(droppedImages('{"id": "i_x"}')).toEqual([])
    expect(droppedImages('[{"id": "../etc/passwd"}, {"id": 3}]')).toEqual([])
  })
})

describe('the boards store', () => {
  it('lists boards by name and keeps the order through create and rename', async () => {
    const { store } = setup([board('b_z', 'zebra'), board('b_a', 'Apple')])
    await store.load()
    expect(store.items.value.map((b) => b.name)).toEqual(['Apple', 'zebra'])
    const made = await store.create('  Mango ')
    expect(made?.name).toBe('Mango')
    expect(store.items.value.map((b) => b.name)).toEqual(['Apple', 'Mango', 'zebra'])
    await store.rename('b_z', 'Banana')
    expect(store.items.value.map((b) => b.name)).toEqual(['Apple', 'Banana', 'Mango'])
  })

  it('a board is a filter of the feed: selecting it again, or deleting it, goes back to every image', async () => {
    const { store, finder, searches, client } = setup([board('b_1', 'Keepers', 2)])
    await store.load()
    await store.show('b_1')
    expect(searches.at(-1)).toEqual({ board_id: 'b_1' })
    expect(client.listBoards).toHaveBeenCalledTimes(2) // counts read again as the board is shown
    expect(store.current.value?.name).toBe('Keepers')
    expect(searchQuery({ ...finder.filters, liked: true })).toEqual({ liked: 'true', board_id: 'b_1' })
    await store.show('b_1')
    expect(finder.filters.board).toBeNull()
    await store.show('b_1')
    await store.remove('b_1')
    expect(finder.filters.board).toBeNull()
    expect(store.items.value).toEqual([])
  })

  it('adds images, says what failed, and updates the count', async () => {
    const { store, client } = setup([board('b_1', 'Keepers')])
    await store.load()
    const r = await store.addImages(store.items.value[0], [
      { id: ID('A'), job_id: 'j_a' },
      { id: ID('A'), job_id: 'j_a' },
      { id: ID('X'), job_id: 'j_x' },
    ])
    expect(client.changeBoardImages).toHaveBeenCalledWith('b_1', { add: [ID('A'), ID('X')], remove: [] })
    expect(r?.added).toEqual([ID('A')])
    expect(store.items.value[0].count).toBe(1)
    expect(toasts.map((t) => t.kind).sort()).toEqual(['error', 'success'])
    expect(toasts.find((t) => t.kind === 'error')?.message).toMatch(/One image couldn't be changed: Image not found/)
  })

  it('sends at most 200 images per request', async () => {
    const { store, client } = setup([board('b_1', 'Keepers')])
    await store.load()
    const many = Array.from({ length: 450 }, (_, n) => ({ id: `i_${String(n).padStart(26, '0')}`, job_id: 'j' }))
    const r = await store.addImages(store.items.value[0], many)
    expect((client.changeBoardImages as ReturnType<typeof vi.fn>).mock.calls.map((c) => c[1].add.length)).toEqual([200, 200, 50])
    expect(r?.added).toHaveLength(450)
  })

  it('removing images from the board being shown takes their jobs out of the results', async () => {
    const a = image(ID('A'), 'j_a')
    const b1 = image(ID('B'), 'j_b')
    const b2 = image(ID('C'), 'j_b')
    const { store, finder } = setup([board('b_1', 'Keepers', 3)], { items: [job('j_a', [a]), job('j_b', [b1, b2])], next_cursor: null })
    await store.load()
    await store.show('b_1')
    expect(finder.list().map((j) => j.id)).toEqual(['j_a', 'j_b'])
    await store.removeImages(store.items.value[0], [a, b1])
    // j_b keeps an image that may still be in the board
    expect(finder.list().map((j) => j.id)).toEqual(['j_b'])
    expect(store.items.value[0].count).toBe(1)
  })

  it('opens and closes the "Add to board" dialog for images', () => {
    const { store } = setup()
    store.pick([])
    expect(store.picking.value).toBeNull()
    store.pick([{ id: ID('A'), job_id: 'j_a' }])
    expect(store.picking.value).toHaveLength(1)
    store.closePicker()
    expect(store.picking.value).toBeNull()
  })
})
