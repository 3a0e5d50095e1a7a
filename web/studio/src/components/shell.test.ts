import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import StatusIndicator from './StatusIndicator.vue'
import LoginView from './LoginView.vue'
import { jobs } from '../stores/jobs'
import { applyStatus, status } from '../stores/status'
import { api, ApiError } from '../api/client'

afterEach(() => {
  jobs.applyQueue({ running: 0, pending: 0 })
  status.comfyConnected = null
  status.stream = 'connecting'
})

describe('status indicator', () => {
  it('reads /status and shows connection and queue counts', async () => {
    const q = applyStatus({ studio: { version: '0.1.0' }, comfy: { connected: true }, queue: { running: 1, pending: 3 } })
    jobs.applyQueue(q)
    status.stream = 'open'
    const w = mount(StatusIndicator)
    expect(w.text()).toContain('1 running · 3 queued')
    expect(w.get('button').attributes('aria-label')).toContain('ComfyUI connected')
    await w.get('button').trigger('click')
    expect(w.get('[role=dialog]').text()).toContain('Studio 0.1.0')
  })

  it('says when ComfyUI is disconnected', () => {
    applyStatus({ comfy: { connected: false }, queue: { running: 0, pending: 0 } })
    status.stream = 'open'
    const w = mount(StatusIndicator)
    expect(w.text()).toContain('ComfyUI disconnected')
    expect(w.text()).toContain('Idle')
  })
})

describe('login view', () => {
  it('posts the credentials and reports a readable error', async () => {
    const login = vi.spyOn(api, 'login').mockRejectedValueOnce(new ApiError('unauthorized', 'Wrong username or password', [], 401))
    const w = mount(LoginView)
    await w.get('#login-user').setValue('ada')
    await w.get('#login-pass').setValue('secret')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(login).toHaveBeenCalledWith('ada', 'secret')
    expect(w.get('[role=alert]').text()).toBe('Wrong username or password')
    login.mockResolvedValueOnce({})
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.emitted('done')).toHaveLength(1)
  })
})

describe('session', () => {
  it('asks for a login when the server says so, and for setup on a first run', async () => {
    const { applySession, session } = await import('../stores/session')
    applySession({ user: null, csrf_token: 't', login_required: true })
    expect(session.authRequired).toBe(true)
    expect(session.setupRequired).toBe(false)
    applySession({ user: null, csrf_token: 't', setup_required: true, login_required: true })
    expect(session.setupRequired).toBe(true)
    applySession({ user: { username: 'owner' }, csrf_token: 't', local: true })
    expect(session.authRequired).toBe(false)
    expect(session.local).toBe(true)
  })
})
