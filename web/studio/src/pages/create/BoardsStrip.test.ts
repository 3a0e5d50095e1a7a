import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import BoardsStrip from './BoardsStrip.vue'
import BoardPicker from './BoardPicker.vue'
import { createBoards, IMAGE_DRAG_TYPE } from '../../stores/boards'
import { createFinder } from '../../stores/finder'
import { createJobsStore } from '../../stores/jobs'
import type { ApiClient } from '../../api/client'
import type { Board } from '../../api/types'

const IMG = `i_${'A'.repeat(26)}`
const board = (id: string, name: string, count = 0): Board => ({ id, name, count, cover: null, created_at: '', updated_at: '' })

function setup(stored: Board[], ask = () => true) {
  const boards = [...stored]
  const client = {
    listBoards: vi.fn(async () => ({ items: boards })),
    createBoard: vi.fn(async (name: string) => board(`b_${name}`, name)),
    renameBoard: vi.fn(async (id: string, name: string) => board(id, name)),
    deleteBoard: vi.fn(async (id: string) => ({ id, deleted: true, removed: 0 })),
    changeBoardImages: vi.fn(async (id: string, change: { add?: string[] }) => ({
      board: board(id, boards.find((b) => b.id === id)?.name ?? id, (change.add ?? []).length),
      added: change.add ?? [],
      removed: [],
      failed: [],
    })),
    searchJobs: vi.fn(async () => ({ items: [], next_cursor: null })),
  } as unknown as ApiClient
  const finder = createFinder(createJobsStore(), { debounceMs: 0 })
  finder.use(client)
  const store = createBoards({ client, finder })
  return { store, client, finder, mountStrip: () => mount(BoardsStrip, { props: { boards: store, ask }, attachTo: document.body }) }
}
afterEach(() => {
  document.body.innerHTML = ''
})

describe('boards strip', () => {
  it('creates a board from the keyboard and refuses a name it already has', async () => {
    const { store, client, mountStrip } = setup([board('b_1', 'Cats')])
    await store.load()
    const w = mountStrip()
    await w.get('button.new').trigger('click')
    const input = w.get('input[aria-label="New board name"]')
    await input.setValue('cats')
    expect(w.get('[role=alert]').text()).toMatch(/already/)
    await input.trigger('keydown', { key: 'Enter' })
    expect(client.createBoard).not.toHaveBeenCalled()
    await input.setValue('Dogs')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(client.createBoard).toHaveBeenCalledWith('Dogs')
    expect(w.findAll('.board .label').map((l) => l.text())).toEqual(['Cats', 'Dogs'])
  })

  it('filters by a board on click, renames with F2 and deletes with Delete', async () => {
    const { store, client, finder, mountStrip } = setup([board('b_1', 'Cats', 2)])
    await store.load()
    const w = mountStrip()
    const chip = w.get('[data-board-id="b_1"] .name')
    await chip.trigger('click')
    await flushPromises()
    expect(finder.filters.board).toBe('b_1')
    expect(chip.attributes('aria-pressed')).toBe('true')
    await chip.trigger('keydown', { key: 'F2' })
    const input = w.get('input[aria-label="Rename board Cats"]')
    await input.setValue('Kittens')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(client.renameBoard).toHaveBeenCalledWith('b_1', 'Kittens')
    await w.get('[data-board-id="b_1"] .name').trigger('keydown', { key: 'Delete' })
    await flushPromises()
    expect(client.deleteBoard).toHaveBeenCalledWith('b_1')
    expect(finder.filters.board).toBeNull()
  })

  it('asks before deleting and does nothing when told no', async () => {
    const { store, client, mountStrip } = setup([board('b_1', 'Cats', 2)], () => false)
    await store.load()
    const w = mountStrip()
    await w.get('[data-board-id="b_1"] .name').trigger('keydown', { key: 'Delete' })
    await flushPromises()
    expect(client.deleteBoard).not.toHaveBeenCalled()
  })

  it('takes the images of a tile dropped on a board', async () => {
    const { store, client, mountStrip } = setup([board('b_1', 'Cats')])
    await store.load()
    const w = mountStrip()
    const data = new Map([[IMAGE_DRAG_TYPE, JSON.stringify([{ id: IMG, job_id: 'j_1' }])]])
    const dataTransfer = { types: [IMAGE_DRAG_TYPE], getData: (t: string) => data.get(t) ?? '', dropEffect: 'none' }
    const li = w.get('[data-board-id="b_1"]')
    await li.trigger('dragover', { dataTransfer })
    expect(li.classes()).toContain('over')
    await li.trigger('drop', { dataTransfer })
    await flushPromises()
    expect(client.changeBoardImages).toHaveBeenCalledWith('b_1', { add: [IMG], remove: [] })
    expect(li.classes()).not.toContain('over')
  })
})

describe('add to board dialog', () => {
  it('adds the picked images to the board typed, or makes it', async () => {
    const { store, client } = setup([board('b_1', 'Cats')])
    await store.load()
    store.pick([{ id: IMG, job_id: 'j_1' }])
    const w = mount(BoardPicker, { props: { boards: store }, attachTo: document.body })
    const input = w.get('input')
    await input.setValue('Dogs')
    expect(w.text()).toContain('New board “Dogs”')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(client.createBoard).toHaveBeenCalledWith('Dogs')
    expect(client.changeBoardImages).toHaveBeenCalledWith('b_Dogs', { add: [IMG], remove: [] })
    expect(store.picking.value).toBeNull()
  })

  it('walks the boards with the arrows and closes on Escape', async () => {
    const { store, client } = setup([board('b_1', 'Cats'), board('b_2', 'Dogs')])
    await store.load()
    store.pick([{ id: IMG, job_id: 'j_1' }])
    const w = mount(BoardPicker, { props: { boards: store }, attachTo: document.body })
    const input = w.get('input')
    await input.trigger('keydown', { key: 'ArrowDown' })
    expect(w.get('[aria-selected=true]').text()).toContain('Dogs')
    await input.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(client.changeBoardImages).toHaveBeenCalledWith('b_2', { add: [IMG], remove: [] })
    store.pick([{ id: IMG, job_id: 'j_1' }])
    await input.trigger('keydown', { key: 'Escape' })
    expect(store.picking.value).toBeNull()
  })
})
