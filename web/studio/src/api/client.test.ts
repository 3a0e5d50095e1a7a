import { describe, expect, it, vi } from 'vitest'
import { ApiClient, ApiError, errorMessage } from './client'

type Handler = (url: string, init: RequestInit) => { status: number; body?: unknown; type?: string }

function envelope(data: unknown) {
  return { ok: true, data, error: null, meta: { request_id: 'r1' } }
}
function failure(code: string, message = code, details: unknown[] = []) {
  return { ok: false, data: null, error: { code, message, details }, meta: { request_id: 'r2' } }
}

function fakeFetch(handler: Handler) {
  const calls: { url: string; init: RequestInit }[] = []
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = String(input)
    calls.push({ url, init })
    const r = handler(url, init)
    const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body)
    return new Response(text, { status: r.status, headers: { 'content-type': r.type ?? 'application/json' } })
  })
  return { fn: fn as unknown as typeof fetch, calls }
}

async function failure_of(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p
  } catch (e) {
    return e as ApiError
  }
  throw new Error('expected a failure')
}

const sessionOk = (token = 'tok1') => ({ status: 200, body: envelope({ user: { username: 'ada' }, csrf_token: token }) })

describe('ApiClient', () => {
  it('unwraps the envelope on success', async () => {
    const { fn } = fakeFetch(() => ({ status: 200, body: envelope({ running: 1, pending: 2 }) }))
    const c = new ApiClient(fn)
    await expect(c.get('/status')).resolves.toEqual({ running: 1, pending: 2 })
  })

  it('throws a typed ApiError with code, message, details and status', async () => {
    const details = [{ loc: ['text'], message: 'must not be empty', type: 'value_error' }]
    const { fn } = fakeFetch(() => ({ status: 400, body: failure('validation_error', 'Invalid request', details) }))
    const c = new ApiClient(fn)
    const err = await failure_of(c.get('/x'))
    expect(err).toBeInstanceOf(ApiError)
    expect(err.code).toBe('validation_error')
    expect(err.status).toBe(400)
    expect(err.details).toEqual(details)
    expect(err.requestId).toBe('r2')
    expect(errorMessage(err)).toBe('text: must not be empty')
    const dup = new ApiError('validation_error', 'x', [{ loc: ['image_ids'], message: 'image_ids: need a workflow' }], 400)
    expect(errorMessage(dup)).toBe('image_ids: need a workflow')
  })

  it('maps a non-JSON 404 to not_found and a network failure to network_error', async () => {
    const { fn } = fakeFetch(() => ({ status: 404, body: '404: Not Found', type: 'text/plain' }))
    const err = await failure_of(new ApiClient(fn).get('/nope'))
    expect(err.code).toBe('not_found')
    const broken = vi.fn(async () => {
      throw new TypeError('Failed to fetch')
    }) as unknown as typeof fetch
    const err2 = await failure_of(new ApiClient(broken).get('/status'))
    expect(err2.code).toBe('network_error')
    expect(errorMessage(err2)).toMatch(/reach the studio server/)
  })

  it('fetches the session once and sends X-CSRF-Token with JSON on every state-changing request', async () => {
    const { fn, calls } = fakeFetch((url) => (url.endsWith('/session') ? sessionOk() : { status: 200, body: envelope({}) }))
    const c = new ApiClient(fn)
    await Promise.all([c.post('/generate', { text: 'a cat' }), c.del('/jobs/j_1'), c.put('/x', {}), c.patch('/y', {})])
    await c.get('/jobs')
    const sessionCalls = calls.filter((x) => x.url.endsWith('/session'))
    expect(sessionCalls).toHaveLength(1)
    for (const call of calls.filter((x) => x.init.method !== 'GET')) {
      const h = call.init.headers as Record<string, string>
      expect(h['X-CSRF-Token']).toBe('tok1')
      expect(h['Content-Type']).toBe('application/json')
    }
    const get = calls.find((x) => x.url.includes('/jobs') && x.init.method === 'GET')!
    expect((get.init.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined()
    const gen = calls.find((x) => x.url.endsWith('/generate'))!
    expect(JSON.parse(String(gen.init.body))).toEqual({ text: 'a cat' })
  })

  it('uploads as multipart without forcing a JSON content type', async () => {
    const { fn, calls } = fakeFetch((url) => (url.endsWith('/session') ? sessionOk() : { status: 200, body: envelope({ id: 'i_1' }) }))
    const c = new ApiClient(fn)
    await c.upload(new File([new Uint8Array([1, 2, 3])], 'cat.png', { type: 'image/png' }))
    const up = calls.find((x) => x.url.endsWith('/uploads'))!
    const h = up.init.headers as Record<string, string>
    expect(h['Content-Type']).toBeUndefined()
    expect(h['X-CSRF-Token']).toBe('tok1')
    expect(up.init.body).toBeInstanceOf(FormData)
    expect((up.init.body as FormData).get('image')).toBeInstanceOf(File)
  })

  it('on 401 refreshes once, then retries the request', async () => {
    let refreshed = false
    const { fn, calls } = fakeFetch((url) => {
      if (url.endsWith('/session')) return sessionOk(refreshed ? 'tok2' : 'tok1')
      if (url.endsWith('/auth/refresh')) {
        refreshed = true
        return { status: 200, body: envelope({}) }
      }
      return refreshed ? { status: 200, body: envelope(['ok']) } : { status: 401, body: failure('unauthorized') }
    })
    const onAuthRequired = vi.fn()
    const c = new ApiClient(fn, { onAuthRequired })
    await expect(c.post('/generate', { text: 'x' })).resolves.toEqual(['ok'])
    expect(calls.filter((x) => x.url.endsWith('/auth/refresh'))).toHaveLength(1)
    const last = calls[calls.length - 1]
    expect((last.init.headers as Record<string, string>)['X-CSRF-Token']).toBe('tok2')
    expect(onAuthRequired).not.toHaveBeenCalled()
  })

  it('shares one refresh between concurrent 401s and asks for a login when still unauthorized', async () => {
    const { fn, calls } = fakeFetch((url) => {
      if (url.endsWith('/session')) return sessionOk()
      if (url.endsWith('/auth/refresh')) return { status: 200, body: envelope({}) }
      return { status: 401, body: failure('unauthorized', 'Sign in') }
    })
    const onAuthRequired = vi.fn()
    const c = new ApiClient(fn, { onAuthRequired })
    const results = await Promise.allSettled([c.get('/jobs'), c.get('/status')])
    expect(results.every((r) => r.status === 'rejected')).toBe(true)
    expect(calls.filter((x) => x.url.endsWith('/auth/refresh')).length).toBeLessThanOrEqual(2)
    expect(calls.filter((x) => x.url.endsWith('/jobs'))).toHaveLength(2) // original + one retry
    expect(onAuthRequired).toHaveBeenCalled()
  })

  it('asks for a login when the refresh itself fails', async () => {
    const { fn, calls } = fakeFetch((url) => {
      if (url.endsWith('/auth/refresh')) return { status: 401, body: failure('unauthorized') }
      if (url.endsWith('/session')) return sessionOk()
      return { status: 401, body: failure('unauthorized') }
    })
    const onAuthRequired = vi.fn()
    const c = new ApiClient(fn, { onAuthRequired })
    const err = await failure_of(c.get('/jobs'))
    expect(err.code).toBe('unauthorized')
    expect(onAuthRequired).toHaveBeenCalledTimes(1)
    expect(calls.filter((x) => x.url.endsWith('/jobs'))).toHaveLength(1)
  })

  it('renews the CSRF token once on csrf_failed', async () => {
    let sessions = 0
    const { fn } = fakeFetch((url, init) => {
      if (url.endsWith('/session')) return sessionOk(`tok${++sessions}`)
      const token = (init.headers as Record<string, string>)['X-CSRF-Token']
      return token === 'tok2' ? { status: 200, body: envelope('done') } : { status: 403, body: failure('csrf_failed') }
    })
    const c = new ApiClient(fn)
    await expect(c.post('/queue/clear')).resolves.toBe('done')
    expect(sessions).toBe(2)
  })

  it('login posts credentials and reloads the session; logout sends everywhere', async () => {
    const { fn, calls } = fakeFetch((url) => (url.endsWith('/session') ? sessionOk() : { status: 200, body: envelope({}) }))
    const onSession = vi.fn()
    const c = new ApiClient(fn, { onSession })
    await c.login('ada', 'pw')
    const login = calls.find((x) => x.url.endsWith('/auth/login'))!
    expect(JSON.parse(String(login.init.body))).toEqual({ username: 'ada', password: 'pw' })
    await c.logout(true)
    const logout = calls.find((x) => x.url.endsWith('/auth/logout'))!
    expect(JSON.parse(String(logout.init.body))).toEqual({ everywhere: true })
    expect(onSession).toHaveBeenLastCalledWith(null)
  })

  it('builds query strings and skips empty values', () => {
    const c = new ApiClient(vi.fn() as unknown as typeof fetch)
    expect(c.url('/jobs', { limit: 40, cursor: null })).toBe('/studio/api/v1/jobs?limit=40')
    expect(c.url('/shortcodes/suggest', { text: '--ar 1&2', cursor: 4 })).toBe(
      '/studio/api/v1/shortcodes/suggest?text=--ar+1%262&cursor=4',
    )
  })
})
