// The one place that talks to /studio/api/v1: unwraps the envelope, sends the CSRF token on every
// state-changing request, refreshes an expired session once, and turns every failure into an ApiError.
import type {
  ActionSlot,
  Board,
  BoardChange,
  BulkOp,
  BulkResult,
  ErrorDetail,
  Image,
  Job,
  Page,
  PromptPreview,
  QueueCounts,
  Session,
  SuggestResult,
  Submitted,
} from './types'

export const API_BASE = '/studio/api/v1'

export class ApiError extends Error {
  readonly code: string
  readonly details: ErrorDetail[]
  readonly status: number
  readonly requestId: string | null

  constructor(code: string, message: string, details: ErrorDetail[] = [], status = 0, requestId: string | null = null) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.details = details
    this.status = status
    this.requestId = requestId
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.code === 'not_found'
}

/** Codes for which a missing route means "this server doesn't have that feature yet". */
export function isMissingRoute(e: unknown): boolean {
  return e instanceof ApiError && (e.code === 'not_found' || e.code === 'method_not_allowed')
}

const FRIENDLY: Record<string, string> = {
  network_error: "Can't reach the studio server. Check that ComfyUI is running.",
  unauthorized: 'Your session has ended. Please sign in again.',
  csrf_failed: 'The page is out of date. Reload it and try again.',
  forbidden: "You don't have permission to do that.",
  not_found: "That doesn't exist (any more).",
  payload_too_large: 'That file is too large.',
  image_too_large: 'That image is too large.',
  unsupported_media_type: 'Use a PNG, JPEG or WebP image.',
  comfy_unavailable: "ComfyUI isn't reachable right now.",
  internal_error: 'Something went wrong on the server.',
  bad_response: 'The server sent an unexpected answer.',
}

/** A sentence a person can read, for any error thrown by the client (or anything else). */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === 'validation_error' && e.details.length) {
      return e.details
        .map((d) => {
          const msg = d.message ?? e.message
          const field = d.loc && d.loc.length ? d.loc.join('.') : ''
          return field && !msg.startsWith(field) ? `${field}: ${msg}` : msg
        })
        .join('; ')
    }
    if (e.code === 'comfy_rejected') {
      const first = e.details[0]
      const nodeErr = first && Array.isArray(first.errors) && first.errors[0]
      const msg =
        nodeErr && typeof nodeErr === 'object' && nodeErr !== null && 'message' in nodeErr
          ? String((nodeErr as { message: unknown }).message)
          : ''
      return `ComfyUI refused the workflow${first?.class_type ? ` (${first.class_type})` : ''}${msg ? `: ${msg}` : '.'}`
    }
    if (e.message && e.code !== 'network_error' && e.code !== 'bad_response') return e.message
    return FRIENDLY[e.code] ?? e.message ?? 'Something went wrong.'
  }
  if (e instanceof Error && e.message) return e.message
  return 'Something went wrong.'
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

export interface RequestOptions {
  body?: unknown
  form?: FormData
  query?: Record<string, string | number | boolean | null | undefined>
  signal?: AbortSignal
  /** internal: whether auth refresh / CSRF renewal may still be tried */
  retry?: boolean
}

export interface ClientHooks {
  /** the session became known (after GET /session, login, logout) */
  onSession?: (s: Session | null) => void
  /** still unauthorized after one refresh: show the login view */
  onAuthRequired?: () => void
}

const UNSAFE = new Set<Method>(['POST', 'PUT', 'PATCH', 'DELETE'])

function fallbackCode(status: number): string {
  if (status === 401) return 'unauthorized'
  if (status === 403) return 'forbidden'
  if (status === 404) return 'not_found'
  if (status === 405) return 'method_not_allowed'
  if (status === 413) return 'payload_too_large'
  if (status === 502 || status === 503 || status === 504) return 'comfy_unavailable'
  if (status >= 500) return 'internal_error'
  return 'bad_response'
}

export class ApiClient {
  private sessionPromise: Promise<Session> | null = null
  private refreshPromise: Promise<boolean> | null = null
  private csrfToken: string | null = null
  hooks: ClientHooks

  constructor(
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
    hooks: ClientHooks = {},
    readonly base: string = API_BASE,
  ) {
    this.hooks = hooks
  }

  url(path: string, query?: RequestOptions['query']): string {
    let u = this.base + path
    if (query) {
      const qs = new URLSearchParams()
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.set(k, String(v))
      const s = qs.toString()
      if (s) u += (u.includes('?') ? '&' : '?') + s
    }
    return u
  }

  /** GET /session once (shared by concurrent callers); `force` fetches it again. */
  session(force = false): Promise<Session> {
    if (!this.sessionPromise || force) {
      const p = this.raw<Session>('GET', '/session', {}).then(
        (s) => {
          this.csrfToken = s?.csrf_token ?? null
          this.hooks.onSession?.(s)
          return s
        },
        (e) => {
          if (this.sessionPromise === p) this.sessionPromise = null
          throw e
        },
      )
      this.sessionPromise = p
    }
    return this.sessionPromise
  }

  /** The session at start-up: refreshes once on 401, then asks for a login. */
  async bootstrap(): Promise<Session | null> {
    try {
      return await this.session(true)
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') {
        if (await this.refresh()) return this.sessionPromise
        this.hooks.onAuthRequired?.()
        return null
      }
      throw e
    }
  }

  async request<T>(method: Method, path: string, opts: RequestOptions = {}): Promise<T> {
    const retry = opts.retry !== false
    try {
      return await this.raw<T>(method, path, opts)
    } catch (e) {
      if (!(e instanceof ApiError) || !retry) throw e
      if (e.code === 'unauthorized' && !path.startsWith('/auth/')) {
        if (await this.refresh()) return this.request<T>(method, path, { ...opts, retry: false }).catch((e2) => {
          if (e2 instanceof ApiError && e2.code === 'unauthorized') this.hooks.onAuthRequired?.()
          throw e2
        })
        this.hooks.onAuthRequired?.()
        throw e
      }
      if (e.code === 'csrf_failed') {
        // the token may have rotated (new session, server restart): fetch it again, try once more
        this.csrfToken = null
        await this.session(true)
        return this.request<T>(method, path, { ...opts, retry: false })
      }
      throw e
    }
  }

  /** POST /auth/refresh once for all callers waiting on it; true when the session was renewed. */
  refresh(): Promise<boolean> {
    if (!this.refreshPromise) {
      this.refreshPromise = (async () => {
        try {
          await this.raw('POST', '/auth/refresh', { body: {} })
          await this.session(true)
          return true
        } catch {
          return false
        } finally {
          this.refreshPromise = null
        }
      })()
    }
    return this.refreshPromise
  }

  private async raw<T>(method: Method, path: string, opts: RequestOptions): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' }
    let body: BodyInit | undefined
    if (UNSAFE.has(method)) {
      if (!this.csrfToken) {
        try {
          await this.session()
        } catch (e) {
          // no session route (or no session) — let the request itself report what's wrong
          if (!(e instanceof ApiError)) throw e
        }
      }
      if (this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken
      if (opts.form) body = opts.form // the browser sets multipart/form-data with its boundary
      else {
        headers['Content-Type'] = 'application/json'
        body = JSON.stringify(opts.body ?? {})
      }
    }
    let res: Response
    try {
      res = await this.fetchImpl(this.url(path, opts.query), {
        method,
        headers,
        body,
        credentials: 'same-origin',
        signal: opts.signal,
      })
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e
      throw new ApiError('network_error', FRIENDLY.network_error, [], 0)
    }
    let env: unknown = null
    const type = res.headers.get('content-type') ?? ''
    if (type.includes('json')) {
      try {
        env = await res.json()
      } catch {
        env = null
      }
    }
    if (env && typeof env === 'object' && 'ok' in env) {
      const e = env as {
        ok: boolean
        data: T
        error: { code?: string; message?: string; details?: ErrorDetail[] } | null
        meta?: { request_id?: string }
      }
      if (e.ok && res.ok) return e.data
      const code = e.error?.code ?? fallbackCode(res.status)
      throw new ApiError(
        code,
        e.error?.message ?? FRIENDLY[code] ?? res.statusText,
        Array.isArray(e.error?.details) ? e.error!.details : [],
        res.status,
        e.meta?.request_id ?? null,
      )
    }
    const code = res.ok ? 'bad_response' : fallbackCode(res.status)
    throw new ApiError(code, FRIENDLY[code] ?? `HTTP ${res.status}`, [], res.status)
  }

  get<T>(path: string, query?: RequestOptions['query'], signal?: AbortSignal) {
    return this.request<T>('GET', path, { query, signal })
  }
  post<T>(path: string, body: unknown = {}, signal?: AbortSignal) {
    return this.request<T>('POST', path, { body, signal })
  }
  put<T>(path: string, body: unknown = {}) {
    return this.request<T>('PUT', path, { body })
  }
  patch<T>(path: string, body: unknown = {}) {
    return this.request<T>('PATCH', path, { body })
  }
  del<T>(path: string, body?: unknown) {
    return this.request<T>('DELETE', path, { body })
  }

  // ---- resources -------------------------------------------------------------------------------

  status() {
    return this.get<unknown>('/status')
  }
  jobs(cursor: string | null, limit = 40) {
    return this.get<Page<Job>>('/jobs', { limit, cursor })
  }
  job(id: string) {
    return this.get<Job>(`/jobs/${encodeURIComponent(id)}`)
  }
  generate(text: string) {
    return this.post<Submitted>('/generate', { text })
  }
  deleteJob(id: string) {
    return this.del<unknown>(`/jobs/${encodeURIComponent(id)}`)
  }
  cancelQueued(id: string) {
    return this.del<unknown>(`/queue/${encodeURIComponent(id)}`)
  }
  clearQueue() {
    return this.post<unknown>('/queue/clear')
  }
  /** Interrupt a running job: this one, or without an id the caller's own (the owner's: whatever runs). */
  interrupt(jobId?: string) {
    return this.post<unknown>('/queue/interrupt', jobId ? { job_id: jobId } : {})
  }
  moveToFront(id: string) {
    return this.post<unknown>(`/queue/${encodeURIComponent(id)}/front`)
  }
  upload(file: Blob, name = 'image.png') {
    const form = new FormData()
    form.append('image', file, (file as File).name || name)
    return this.request<Image>('POST', '/uploads', { form })
  }
  promptHistory(limit = 100) {
    return this.get<Page<{ text: string } | string>>('/prompts/history', { limit })
  }
  suggest(text: string, cursor: number, signal?: AbortSignal) {
    return this.get<SuggestResult>('/shortcodes/suggest', { text, cursor }, signal)
  }
  preview(text: string, signal?: AbortSignal) {
    return this.post<PromptPreview>('/prompt/preview', { text }, signal)
  }
  actions() {
    return this.get<ActionSlot[] | { items: ActionSlot[] }>('/actions')
  }
  runAction(slot: string, imageId: string, text?: string, parameters?: Record<string, unknown>) {
    return this.post<Submitted | { job: Job }>(`/actions/${encodeURIComponent(slot)}/run`, {
      image_id: imageId,
      text,
      ...(parameters ? { parameters } : {}),
    })
  }
  /** GET /jobs/search: `q`, `liked`, `action`, `since`… (see stores/finder's searchQuery) */
  searchJobs(query: Record<string, string>, cursor: string | null, limit = 40, signal?: AbortSignal) {
    return this.get<Page<Job>>('/jobs/search', { ...query, limit, cursor }, signal)
  }
  bulkJobs(ids: string[], op: BulkOp) {
    return this.post<BulkResult>('/jobs/bulk', { ids, op })
  }
  listBoards() {
    return this.get<{ items: Board[] }>('/boards')
  }
  createBoard(name: string) {
    return this.post<Board>('/boards', { name })
  }
  renameBoard(id: string, name: string) {
    return this.patch<Board>(`/boards/${encodeURIComponent(id)}`, { name })
  }
  deleteBoard(id: string) {
    return this.del<{ id: string; deleted: boolean; removed: number }>(`/boards/${encodeURIComponent(id)}`)
  }
  changeBoardImages(id: string, change: { add?: string[]; remove?: string[] }) {
    return this.post<BoardChange>(`/boards/${encodeURIComponent(id)}/images`, change)
  }
  setLiked(imageId: string, liked: boolean) {
    const path = `/images/${encodeURIComponent(imageId)}/like`
    return liked ? this.put<unknown>(path) : this.del<unknown>(path)
  }
  setExpirable(imageId: string, expirable: boolean) {
    const path = `/images/${encodeURIComponent(imageId)}/expirable`
    return expirable ? this.put<unknown>(path) : this.del<unknown>(path)
  }
  /** a same-origin link that downloads these images as one zip */
  archiveUrl(imageIds: string[]) {
    return this.url('/images/archive', { ids: imageIds.join(',') })
  }
  async login(username: string, password: string) {
    const r = await this.request<unknown>('POST', '/auth/login', { body: { username, password }, retry: false })
    await this.session(true)
    return r
  }
  async setup(code: string, username: string, password: string) {
    const r = await this.request<unknown>('POST', '/auth/setup', { body: { code, username, password }, retry: false })
    await this.session(true)
    return r
  }
  async logout(everywhere = false) {
    await this.request<unknown>('POST', '/auth/logout', { body: { everywhere }, retry: false })
    this.csrfToken = null
    this.sessionPromise = null
    this.hooks.onSession?.(null)
  }
}

/** The counts of a queue payload (the `queue` event, GET /queue and the status's `queue` share one shape). */
export function normalizeQueue(q: unknown): QueueCounts | null {
  if (!q || typeof q !== 'object') return null
  const o = q as Record<string, unknown>
  if (typeof o.running !== 'number' || typeof o.pending !== 'number') return null
  return { running: o.running, pending: o.pending }
}

/** The shared client used by the app. */
export const api = new ApiClient()
