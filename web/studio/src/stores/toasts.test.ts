import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { FINISHED_MS, MAX_TOASTS, dismiss, notifyJob, refreshJobToast, toast, toasts } from './toasts'
import ToastStack from '../components/ToastStack.vue'
import type { Job } from '../api/types'

const job = (id: string, state: Job['state'], over: Partial<Job> = {}): Job => ({ id, state, created_at: '2026-11-25T18:00:00Z', images: [], ...over })

afterEach(() => {
  for (const t of [...toasts]) dismiss(t.id)
  vi.useRealTimers()
})

describe('toasts', () => {
  it('keeps one toast per job and updates it in place through its transitions', () => {
    notifyJob(job('j_1', 'queued'))
    notifyJob(job('j_2', 'queued'))
    notifyJob(job('j_1', 'running'))
    expect(toasts.filter((t) => t.jobId === 'j_1')).toHaveLength(1)
    expect(toasts.find((t) => t.jobId === 'j_1')!.title).toBe('Generating')
    notifyJob(job('j_1', 'error', { error: { message: 'CUDA out of memory' } }))
    const t = toasts.find((x) => x.jobId === 'j_1')!
    expect(t.kind).toBe('error')
    expect(t.message).toBe('CUDA out of memory')
    expect(toasts).toHaveLength(2)
  })

  it('a page read or resync updates a shown toast but never opens one', () => {
    notifyJob(job('j_1', 'running'))
    refreshJobToast(job('j_1', 'done'))
    refreshJobToast(job('j_2', 'done'))
    expect(toasts.map((t) => [t.jobId, t.title])).toEqual([['j_1', 'Done']])
  })

  it('dismisses finished jobs after a while, keeps running ones', () => {
    vi.useFakeTimers()
    notifyJob(job('j_1', 'running'))
    notifyJob(job('j_2', 'done'))
    vi.advanceTimersByTime(6000)
    expect(toasts.map((t) => t.jobId)).toEqual(['j_1'])
  })

  it('stacks newest first and never shows more than the limit', () => {
    for (let i = 0; i < MAX_TOASTS + 3; i++) toast(`message ${i}`)
    expect(toasts).toHaveLength(MAX_TOASTS)
    expect(toasts[0].message).toBe(`message ${MAX_TOASTS + 2}`)
  })

  it('renders job ids and can be dismissed by the user', async () => {
    notifyJob(job('j_abc', 'queued'))
    const wrapper = mount(ToastStack)
    await flushPromises()
    expect(wrapper.get('[data-job=j_abc]').text()).toContain('j_abc')
    await wrapper.get('button[aria-label="Dismiss notification"]').trigger('click')
    expect(toasts).toHaveLength(0)
  })

  it('collapses finished jobs into one toast that counts them', () => {
    for (const id of ['j_1', 'j_2', 'j_3', 'j_4']) notifyJob(job(id, 'running'))
    notifyJob(job('j_1', 'done'))
    expect(toasts.filter((t) => t.kind === 'success').map((t) => [t.title, t.jobId])).toEqual([['Done', 'j_1']])
    notifyJob(job('j_2', 'done'))
    notifyJob(job('j_3', 'done'))
    const finished = toasts.filter((t) => t.kind === 'success')
    expect(finished).toHaveLength(1)
    expect(finished[0].title).toBe('3 jobs finished')
    expect(finished[0].jobId).toBeNull()
    expect(finished[0].jobIds).toEqual(['j_1', 'j_2', 'j_3'])
    // the finished jobs' own toasts are gone: only j_4 is still shown on its own
    expect(toasts.map((t) => t.jobId)).toEqual([null, 'j_4'])
    expect(toasts[0]).toBe(finished[0])
  })

  it('a single finished job keeps its toast, turned into Done in place', () => {
    notifyJob(job('j_1', 'running'))
    const before = toasts[0].id
    notifyJob(job('j_1', 'done'))
    expect(toasts).toHaveLength(1)
    expect(toasts[0].id).toBe(before)
    expect([toasts[0].title, toasts[0].jobId]).toEqual(['Done', 'j_1'])
  })

  it('the finished-jobs toast times out after the last job joined it', () => {
    vi.useFakeTimers()
    notifyJob(job('j_1', 'done'))
    vi.advanceTimersByTime(FINISHED_MS - 1000)
    notifyJob(job('j_2', 'done'))
    vi.advanceTimersByTime(FINISHED_MS - 1000)
    expect(toasts.map((t) => t.title)).toEqual(['2 jobs finished'])
    vi.advanceTimersByTime(1000)
    expect(toasts).toHaveLength(0)
  })

  it('keeps failed jobs and error messages until they are dismissed', () => {
    vi.useFakeTimers()
    notifyJob(job('j_1', 'error', { error: { message: 'CUDA out of memory' } }))
    notifyJob(job('j_2', 'rejected', { error: { message: 'unknown node' } }))
    toast("Couldn't delete", 'error')
    toast('Saved')
    vi.advanceTimersByTime(10 * 60 * 1000)
    expect(toasts.map((t) => t.title)).toEqual(['Error', 'Rejected by ComfyUI', 'Failed'])
    dismiss(toasts[0].id)
    expect(toasts).toHaveLength(2)
  })

  it('the same error again refreshes the one shown instead of stacking', () => {
    toast("Can't reach the studio server.", 'error', 'Status')
    toast("Can't reach the studio server.", 'error', 'Status')
    toast('Another problem', 'error', 'Status')
    expect(toasts.map((t) => t.message)).toEqual(['Another problem', "Can't reach the studio server."])
  })

  it('over the limit, older notices go before any error', () => {
    notifyJob(job('j_err', 'error', { error: { message: 'boom' } }))
    for (let i = 0; i < MAX_TOASTS + 2; i++) toast(`message ${i}`)
    expect(toasts).toHaveLength(MAX_TOASTS)
    expect(toasts.some((t) => t.jobId === 'j_err')).toBe(true)
  })

  it('a finished job queued again leaves the group for its own toast', () => {
    notifyJob(job('j_1', 'done'))
    notifyJob(job('j_2', 'done'))
    notifyJob(job('j_1', 'queued'))
    const group = toasts.find((t) => t.jobIds.length > 0)!
    expect([group.title, group.jobId]).toEqual(['Done', 'j_2'])
    expect(toasts.find((t) => t.jobId === 'j_1')!.title).toBe('Queued')
  })

  it('renders the group as one item with a count, and Dismiss all clears the stack', async () => {
    notifyJob(job('j_1', 'done'))
    notifyJob(job('j_2', 'done'))
    notifyJob(job('j_3', 'error', { error: { message: 'x' } }))
    toast('hello')
    const wrapper = mount(ToastStack)
    await flushPromises()
    expect(wrapper.get('[data-jobs="2"]').text()).toContain('2 jobs finished')
    expect(wrapper.get('[data-job=j_3]').attributes('role')).toBe('alert')
    await wrapper.get('button.clear-all').trigger('click')
    expect(toasts).toHaveLength(0)
  })
})

