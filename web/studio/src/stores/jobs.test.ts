import { describe, expect, it, vi } from 'vitest'
import { computed, watch } from 'vue'
import { createJobsStore } from './jobs'
import { connectEvents, handleEvent } from '../api/events'
import type { Job } from '../api/types'
import { status } from './status'

function job(id: string, created: string, over: Partial<Job> = {}): Job {
  return { id, state: 'queued', prompt_text: 'a cat', created_at: `2026-11-25T18:${created}Z`, images: [], ...over }
}
const img = (id: string, job_id: string) => ({
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

class FakeES {
  static instances: FakeES[] = []
  readyState = 0
  onopen: (() => void) | null = null
  onerror: (() => void) | null = null
  listeners = new Map<string, ((e: MessageEvent) => void)[]>()
  closed = false
  constructor(public url: string) {
    FakeES.instances.push(this)
  }
  addEventListener(kind: string, fn: (e: MessageEvent) => void) {
    this.listeners.set(kind, [...(this.listeners.get(kind) ?? []), fn])
  }
  emit(kind: string, data: unknown, id = '1-1') {
    for (const fn of this.listeners.get(kind) ?? []) fn(new MessageEvent(kind, { data: JSON.stringify(data), lastEventId: id }))
  }
  close() {
    this.closed = true
    this.readyState = 2
  }
}

describe('jobs store', () => {
  it('orders jobs newest first whatever order they arrive in', () => {
    const s = createJobsStore()
    s.upsert(job('j_b', '01:00'))
    s.upsert(job('j_c', '03:00'))
    s.upsert(job('j_a', '02:00'))
    expect(s.order.value).toEqual(['j_c', 'j_a', 'j_b'])
  })

  it('applies job, progress and output events to the job they name', () => {
    const s = createJobsStore()
    handleEvent(s, 'job', { job: job('j_1', '00:00') })
    handleEvent(s, 'progress', { job_id: 'j_1', prompt_id: 'p', progress: { value: 5, max: 20, overall: 0.25 } })
    expect(s.get('j_1')!.state).toBe('running')
    expect(s.get('j_1')!.progress!.overall).toBe(0.25)
    handleEvent(s, 'output', { job_id: 'j_1', image: img('i_1', 'j_1') })
    handleEvent(s, 'output', { job_id: 'j_1', image: img('i_1', 'j_1') }) // duplicate ignored
    handleEvent(s, 'job', { job: job('j_1', '00:00', { state: 'done', images: [] }) })
    expect(s.get('j_1')!.state).toBe('done')
    expect(s.get('j_1')!.images.map((i) => i.id)).toEqual(['i_1'])
    handleEvent(s, 'progress', { job_id: 'j_1', progress: { overall: 0.5 } }) // late progress ignored
    expect(s.get('j_1')!.state).toBe('done')
    handleEvent(s, 'progress', { job_id: 'j_unknown', progress: { overall: 0.5 } })
    expect(s.order.value).toEqual(['j_1'])
  })

  it('updates queue counts from queue events', () => {
    const s = createJobsStore()
    handleEvent(s, 'queue', { running: 1, pending: 4 })
    expect({ ...s.queue }).toEqual({ running: 1, pending: 4 })
  })

  it('takes queue positions from queue events', () => {
    const s = createJobsStore()
    s.upsert(job('j_1', '01:00'))
    s.upsert(job('j_2', '02:00'))
    handleEvent(s, 'queue', { running: 1, pending: 2, positions: { j_1: 4, j_2: 5 } })
    expect(s.queuePosition(s.get('j_1')!)).toBe(4)
    expect(s.queuePosition(s.get('j_2')!)).toBe(5)
    expect(s.positionsInEvents.value).toBe(true)
  })

  it('reads GET /queue as it reads a queue event (one shape, entries beside it)', () => {
    const s = createJobsStore()
    s.upsert(job('j_1', '01:00'))
    s.applyQueue({
      running: 1,
      pending: 1,
      positions: { j_1: 1 },
      connected: true,
      items: [
        { job_id: null, prompt_id: null, number: 3, position: 0, mine: false },
        { job_id: 'j_1', prompt_id: 'p1', number: 4, position: 1, mine: true },
      ],
    })
    expect({ ...s.queue }).toEqual({ running: 1, pending: 1 })
    expect(s.queuePosition(s.get('j_1')!)).toBe(1)
  })

  it('resync drops the local live state and uses the server snapshot', () => {
    const s = createJobsStore()
    const gaps = vi.fn()
    s.onResyncGap(gaps)
    s.upsert(job('j_old', '00:00'))
    s.upsert(job('j_gone', '01:00', { state: 'running' }))
    s.upsert(job('j_y', '07:00', { state: 'queued' }))
    handleEvent(s, 'resync', {
      jobs: [job('j_x', '05:00', { state: 'queued' }), job('j_y', '07:00', { state: 'running' })],
      queue: { running: 1, pending: 1 },
      reason: 'too_old',
    })
    expect(s.order.value).toEqual(['j_y', 'j_x'])
    expect(s.get('j_old')).toBeUndefined()
    expect(s.get('j_y')!.state).toBe('running')
    expect(s.queue.running).toBe(1)
    // j_old and j_gone ended while we weren't listening: read the newest page again
    expect(gaps).toHaveBeenCalledTimes(1)
  })

  it('resync keeps finished history and asks for nothing when no live job vanished', () => {
    const s = createJobsStore()
    const gaps = vi.fn()
    s.onResyncGap(gaps)
    s.upsert(job('j_done', '00:00', { state: 'done', images: [img('i_1', 'j_done')] }))
    s.upsert(job('j_run', '01:00', { state: 'running' }))
    handleEvent(s, 'resync', { jobs: [job('j_run', '01:00', { state: 'running' })], queue: { running: 1, pending: 0 }, reason: 'initial' })
    expect(s.order.value).toEqual(['j_run', 'j_done'])
    expect(s.get('j_done')!.images).toHaveLength(1)
    expect(gaps).not.toHaveBeenCalled()
  })

  it('a page read never overwrites a later state from the stream', () => {
    const s = createJobsStore()
    s.upsert(job('j_1', '00:00', { state: 'done', images: [img('i_1', 'j_1')] }))
    s.upsert(job('j_1', '00:00', { state: 'running' }), 'page')
    expect(s.get('j_1')!.state).toBe('done')
    s.upsert(job('j_2', '00:10', { state: 'running' }))
    s.upsert(job('j_2', '00:10', { state: 'error', error: { message: 'boom' } }), 'page')
    expect(s.get('j_2')!.state).toBe('error')
  })

  it('a submit answer that arrives after the stream moved on does not take the job back', () => {
    const s = createJobsStore()
    const seen: string[] = []
    s.onTransition((j, prev) => seen.push(`${j.id}:${prev}->${j.state}`))
    handleEvent(s, 'job', { job: job('j_1', '00:00', { state: 'running' }) })
    expect(s.upsert(job('j_1', '00:00', { state: 'queued' }), 'submit').state).toBe('running')
    expect(s.get('j_1')!.state).toBe('running')
    s.upsert(job('j_1', '00:00', { state: 'queued', action_slot: 'upscale' }), 'submit') // fills a gap only
    expect(s.get('j_1')).toMatchObject({ state: 'running', action_slot: 'upscale' })
    s.upsert(job('j_2', '01:00', { state: 'queued' }), 'submit') // the answer came first: it is news
    expect(s.order.value).toEqual(['j_2', 'j_1'])
    expect(seen).toEqual(['j_1:null->running', 'j_2:null->queued'])
  })

  it('tells listeners about state transitions from the stream only', () => {
    const s = createJobsStore()
    const seen: string[] = []
    s.onTransition((j, prev) => seen.push(`${j.id}:${prev}->${j.state}`))
    s.upsert(job('j_1', '00:00'), 'page')
    handleEvent(s, 'progress', { job_id: 'j_1', progress: { overall: 0.1 } })
    handleEvent(s, 'progress', { job_id: 'j_1', progress: { overall: 0.2 } })
    handleEvent(s, 'job', { job: job('j_1', '00:00', { state: 'done' }) })
    expect(seen).toEqual(['j_1:queued->running', 'j_1:running->done'])
    const quiet: string[] = []
    s.onQuietUpdate((j) => quiet.push(`${j.id}:${j.state}`))
    s.upsert(job('j_2', '01:00', { state: 'running' }), 'page')
    s.upsert(job('j_2', '01:00', { state: 'error' }), 'page')
    expect(seen).toHaveLength(2) // page reads never toast
    expect(quiet).toEqual(['j_2:running', 'j_2:error'])
  })

  it('pages through GET /jobs with the cursor until it ends', async () => {
    const s = createJobsStore()
    const pages: Record<string, { items: Job[]; next_cursor: string | null }> = {
      first: { items: [job('j_3', '03:00'), job('j_2', '02:00')], next_cursor: 'c1' },
      c1: { items: [job('j_1', '01:00')], next_cursor: null },
    }
    const client = { jobs: vi.fn(async (cursor: string | null) => pages[cursor ?? 'first']) }
    await s.loadMore(client as never)
    await s.loadMore(client as never)
    await s.loadMore(client as never)
    expect(client.jobs).toHaveBeenCalledTimes(2)
    expect(client.jobs.mock.calls.map((c) => c[0])).toEqual([null, 'c1'])
    expect(s.order.value).toEqual(['j_3', 'j_2', 'j_1'])
    expect(s.paging.hasMore).toBe(false)
  })

  it('applies a page with one change of the order, in order, whatever order its jobs come in', async () => {
    const s = createJobsStore()
    s.upsert(job('j_5', '05:00'))
    s.upsert(job('j_1', '01:00'))
    const orders: string[][] = []
    const stop = watch(s.order, (o) => orders.push(o), { flush: 'sync' })
    const page = { items: [job('j_2', '02:00'), job('j_4', '04:00'), job('j_3', '03:00'), job('j_5', '05:00', { state: 'done' })], next_cursor: null }
    await s.loadMore({ jobs: vi.fn(async () => page) } as never)
    stop()
    expect(orders).toEqual([['j_5', 'j_4', 'j_3', 'j_2', 'j_1']])
    expect(s.list().map((j) => j.state)).toEqual(['done', 'queued', 'queued', 'queued', 'queued'])
    // a page that changes nothing leaves the order alone
    const again = watch(s.order, () => orders.push([]), { flush: 'sync' })
    await s.refreshTop({ jobs: vi.fn(async () => page) } as never)
    again()
    expect(orders).toHaveLength(1)
  })

  it('list() follows changes to any job, not only to the order', async () => {
    const s = createJobsStore()
    s.upsert(job('j_1', '01:00'))
    s.upsert(job('j_2', '02:00'))
    const states = computed(() => s.list().map((j) => j.state).join())
    expect(states.value).toBe('queued,queued')
    s.applyProgress('j_1', { overall: 0.5 })
    expect(states.value).toBe('queued,running')
    s.remove('j_2')
    expect(states.value).toBe('running')
  })

  it('derives queue position among queued jobs, oldest first, unless the server says', () => {
    const s = createJobsStore()
    s.upsert(job('j_1', '01:00'))
    s.upsert(job('j_2', '02:00'))
    s.upsert(job('j_3', '03:00', { queue_position: 7 }))
    expect(s.queuePosition(s.get('j_1')!)).toBe(1)
    expect(s.queuePosition(s.get('j_2')!)).toBe(2)
    expect(s.queuePosition(s.get('j_3')!)).toBe(7)
  })
})

describe('event stream', () => {
  it('routes named SSE events to the store and reconnects after a closed stream', () => {
    FakeES.instances = []
    const s = createJobsStore()
    const timers: (() => void)[] = []
    const onFreshConnect = vi.fn()
    const onClosed = vi.fn()
    const conn = connectEvents(s, {
      EventSourceImpl: FakeES as unknown as typeof EventSource,
      setTimeoutImpl: (fn) => timers.push(fn),
      onFreshConnect,
      onClosed,
    })
    const es = FakeES.instances[0]
    expect(es.url).toBe('/studio/api/v1/events')
    es.onopen!()
    expect(status.stream).toBe('open')
    es.emit('job', { job: job('j_1', '00:00') }, '7-1')
    es.emit('queue', { running: 0, pending: 1 }, '7-2')
    es.emit('job', 'not json{', '7-3') // ignored, but its id counts
    expect(s.order.value).toEqual(['j_1'])
    expect(s.queue.pending).toBe(1)
    // the browser retries by itself while readyState is CONNECTING
    es.readyState = 0
    es.onerror!()
    expect(FakeES.instances).toHaveLength(1)
    expect(status.stream).toBe('reconnecting')
    // closed for good: open a new stream after a back-off and catch up
    es.readyState = 2
    es.onerror!()
    expect(timers).toHaveLength(1)
    expect(onClosed).toHaveBeenCalledTimes(1)
    timers[0]()
    expect(FakeES.instances).toHaveLength(2)
    // resumes from the last id it saw; no need to re-read pages
    expect(FakeES.instances[1].url).toBe('/studio/api/v1/events?last_event_id=7-3')
    FakeES.instances[1].onopen!()
    expect(onFreshConnect).not.toHaveBeenCalled()
    conn.close()
    expect(FakeES.instances[1].closed).toBe(true)
  })
})
