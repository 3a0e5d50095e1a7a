import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ApiClient } from '../api/client'
import type { BulkOp, Image, Job } from '../api/types'
import { finder } from './finder'
import { jobs } from './jobs'
import { isLiked, toggleLike } from './likes'
import { MAX_BULK, archiveUrl, createSelection, deleteSelected, likeSelected, runOnSelected } from './selection'
import { toasts } from './toasts'

const img = (id: string, job_id: string, over: Partial<Image> = {}): Image => ({
  id,
  job_id,
  kind: 'output',
  width: 512,
  height: 512,
  mime: 'image/png',
  url: `/studio/api/v1/images/${id}`,
  thumb_url: `/studio/api/v1/images/${id}/thumb`,
  created_at: '2026-11-25T18:00:00Z',
  ...over,
})
const job = (id: string, images: Image[], minute = '00'): Job => ({
  id,
  state: 'done',
  prompt_text: 'a cat',
  created_at: `2026-11-25T18:${minute}:00Z`,
  images,
})

// j_a has two images, j_b one
const a1 = img('i_a1', 'j_a')
const a2 = img('i_a2', 'j_a')
const b1 = img('i_b1', 'j_b')
const order = [b1, a1, a2]

beforeEach(() => {
  jobs.reset()
  toasts.splice(0)
  jobs.upsert(job('j_a', [a1, a2], '00'), 'page')
  jobs.upsert(job('j_b', [b1], '01'), 'page')
})
afterEach(() => {
  vi.restoreAllMocks()
  void finder.clear()
})

describe('selection', () => {
  it('toggles images, enters select mode, and lists each job once', () => {
    const s = createSelection()
    expect(s.state.active).toBe(false)
    s.click(a1, order)
    s.click(a2, order)
    expect(s.state.active).toBe(true)
    expect(s.count.value).toBe(2)
    expect(s.jobIds()).toEqual(['j_a'])
    s.click(a1, order)
    expect(s.has('i_a1')).toBe(false)
    expect(s.count.value).toBe(1)
  })

  it('selects a range with Shift, in feed order, either direction', () => {
    const s = createSelection()
    s.click(a2, order)
    s.click(b1, order, { shift: true })
    expect([...s.picked.keys()].sort()).toEqual(['i_a1', 'i_a2', 'i_b1'])
    const t = createSelection()
    t.click(b1, order, { shift: true }) // no anchor yet: just this one
    expect(t.count.value).toBe(1)
  })

  it('leaves select mode with nothing picked', () => {
    const s = createSelection()
    s.toggle(a1)
    s.exit()
    expect(s.state.active).toBe(false)
    expect(s.count.value).toBe(0)
  })
})

function client(over: Partial<Record<keyof ApiClient, unknown>> = {}) {
  const calls: { ids: string[]; op: BulkOp }[] = []
  const c = {
    bulkJobs: vi.fn(async (ids: string[], op: BulkOp) => {
      calls.push({ ids, op })
      return { op, done: ids, failed: [] }
    }),
    setLiked: vi.fn(async () => ({})),
    runAction: vi.fn(async (slot: string, image_id: string) => job(`j_${slot}_${image_id}`, [], '05')),
    archiveUrl: (ids: string[]) => `/studio/api/v1/images/archive?ids=${ids.join(',')}`,
    ...over,
  } as unknown as ApiClient
  return { c, calls }
}

describe('bulk actions', () => {
  it('deletes the selected jobs after a confirm; failed ones stay selected and are named', async () => {
    const s = createSelection()
    s.toggle(a1)
    s.toggle(b1)
    const { c } = client({
      bulkJobs: vi.fn(async () => ({
        op: 'delete',
        done: ['j_a'],
        failed: [{ id: 'j_b', code: 'conflict', message: 'Job j_b is running: interrupt it first' }],
      })),
    })
    const ask = vi.fn((_q: string) => true)
    const r = await deleteSelected(s, c, ask)
    expect(ask.mock.calls[0][0]).toContain('Delete 2 jobs and their 3 images?')
    expect(c.bulkJobs).toHaveBeenCalledWith(['j_a', 'j_b'], 'delete')
    expect(r?.done).toEqual(['j_a'])
    expect(jobs.get('j_a')).toBeUndefined()
    expect(jobs.get('j_b')).toBeDefined()
    expect([...s.picked.keys()]).toEqual(['i_b1'])
    expect(s.state.active).toBe(true)
    expect(toasts.some((t) => t.kind === 'error' && t.message.includes('1 job couldn\'t be deleted: Job j_b is running'))).toBe(true)
  })

  it('does nothing when the confirm is declined', async () => {
    const s = createSelection()
    s.toggle(b1)
    const { c } = client()
    expect(await deleteSelected(s, c, () => false)).toBeNull()
    expect(c.bulkJobs).not.toHaveBeenCalled()
    expect(jobs.get('j_b')).toBeDefined()
  })

  it('leaves select mode once everything picked was deleted', async () => {
    const s = createSelection()
    s.toggle(b1)
    await deleteSelected(s, client().c, () => true)
    expect(s.state.active).toBe(false)
  })

  it('likes whole jobs in one bulk call and a partly picked job image by image', async () => {
    const s = createSelection()
    s.toggle(a1) // half of j_a
    s.toggle(b1) // all of j_b
    const { c, calls } = client()
    await likeSelected(true, s, c)
    expect(calls).toEqual([{ ids: ['j_b'], op: 'like' }])
    expect(c.setLiked).toHaveBeenCalledWith('i_a1', true)
    expect(c.setLiked).toHaveBeenCalledTimes(1)
    expect(isLiked(b1)).toBe(true)
    expect(isLiked(a1)).toBe(true)
    expect(isLiked(a2)).toBe(false) // not picked, not changed
    await likeSelected(false, s, c)
    expect(calls[1]).toEqual({ ids: ['j_b'], op: 'unlike' })
    expect(isLiked(b1)).toBe(false)
    expect(isLiked(a1)).toBe(false)
  })

  it('keeps a job whose like failed unliked and says so', async () => {
    const s = createSelection()
    s.toggle(b1)
    const { c } = client({
      bulkJobs: vi.fn(async () => ({ op: 'like', done: [], failed: [{ id: 'j_b', code: 'not_found', message: 'gone' }] })),
    })
    await likeSelected(true, s, c)
    expect(isLiked(b1)).toBe(false)
    expect(toasts.some((t) => t.kind === 'error' && t.message.includes('gone'))).toBe(true)
  })

  it('runs an action on each picked image, one after the other', async () => {
    const s = createSelection()
    s.toggle(a1)
    s.toggle(b1)
    let inFlight = 0
    let most = 0
    const { c } = client({
      runAction: vi.fn(async (_slot: string, id: string) => {
        most = Math.max(most, ++inFlight)
        await new Promise((r) => setTimeout(r, 1))
        inFlight--
        return job(`j_${id}`, [], '09')
      }),
    })
    const r = await runOnSelected({ slot: 'upscale', label: 'Upscale' }, s, c)
    expect(r).toEqual({ queued: 2, failed: 0 })
    expect((c.runAction as ReturnType<typeof vi.fn>).mock.calls.map((x) => x.slice(0, 2))).toEqual([
      ['upscale', 'i_a1'],
      ['upscale', 'i_b1'],
    ])
    expect(most).toBe(1)
    expect(jobs.get('j_i_a1')?.state).toBe('done')
  })

  it('does not run an action that is not ready', async () => {
    const s = createSelection()
    s.toggle(a1)
    const { c } = client()
    expect(await runOnSelected({ slot: 'vary', label: 'Vary', ready: false, problem: 'No checkpoint' }, s, c)).toEqual({ queued: 0, failed: 0 })
    expect(c.runAction).not.toHaveBeenCalled()
  })

  it('links the picked images as one zip, up to the server limit', () => {
    const s = createSelection()
    expect(archiveUrl(s, client().c)).toBeNull()
    s.toggle(a1)
    s.toggle(b1)
    expect(archiveUrl(s, client().c)).toBe('/studio/api/v1/images/archive?ids=i_a1,i_b1')
    for (let i = 0; i < MAX_BULK; i++) s.toggle(img(`i_x${i}`, 'j_x'))
    expect(archiveUrl(s, client().c)).toBeNull()
  })
})

describe('like toggling', () => {
  it('shows the like at once and keeps it when the server agrees', async () => {
    let done: () => void = () => {}
    const c = { setLiked: vi.fn(() => new Promise<void>((r) => (done = r))) } as unknown as ApiClient
    const p = toggleLike(b1, c)
    expect(isLiked(b1)).toBe(true) // before the answer
    done()
    expect(await p).toBe(true)
    expect(c.setLiked).toHaveBeenCalledWith('i_b1', true)
    expect(await toggleLike(b1, { setLiked: vi.fn(async () => ({})) } as unknown as ApiClient)).toBe(false)
    expect(isLiked(b1)).toBe(false)
  })

  it('puts the like back when the server refuses', async () => {
    const c = { setLiked: vi.fn(async () => Promise.reject(new Error('nope'))) } as unknown as ApiClient
    expect(await toggleLike(a2, c)).toBe(false)
    expect(isLiked(a2)).toBe(false)
    expect(toasts.some((t) => t.kind === 'error' && t.message === 'nope')).toBe(true)
  })

  it('updates a search result the live feed does not hold', async () => {
    const old = img('i_old', 'j_old')
    finder.byId.set('j_old', job('j_old', [old]))
    await toggleLike(old, { setLiked: vi.fn(async () => ({})) } as unknown as ApiClient)
    expect(finder.byId.get('j_old')!.images[0].liked).toBe(true)
  })
})
