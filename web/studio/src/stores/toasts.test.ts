import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { MAX_TOASTS, dismiss, notifyJob, refreshJobToast, toast, toasts } from './toasts'
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
})
