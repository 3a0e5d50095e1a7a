// The studio's event stream (SSE on /studio/api/v1/events) into the jobs store. The browser resends
// Last-Event-ID itself when it reconnects; if the stream closes for good (HTTP error), we open a new
// one after a back-off with `?last_event_id=` so the server replays what we missed (or sends `resync`).
import type { Image, Job, Progress } from './types'
import { API_BASE } from './client'
import type { JobsStore } from '../stores/jobs'
import { applyStatus, status } from '../stores/status'
import { applyModelsEvent } from '../stores/models'
import { applyDownloadEvent } from '../stores/downloads'
import { applyImportEvent } from '../stores/imports'

export const EVENT_KINDS = ['job', 'progress', 'output', 'queue', 'resync', 'status', 'models', 'download', 'import'] as const

export interface EventsOptions {
  url?: string
  EventSourceImpl?: typeof EventSource
  /** called after a fresh (not browser-resumed) connection opened without an id to resume from */
  onFreshConnect?: () => void
  /** the stream closed for good (e.g. 401): a chance to refresh the session before we retry */
  onClosed?: () => void
  setTimeoutImpl?: (fn: () => void, ms: number) => unknown
}

function parse(e: MessageEvent): Record<string, unknown> | null {
  try {
    const v = JSON.parse(e.data)
    return v && typeof v === 'object' ? v : null
  } catch {
    return null
  }
}

export function handleEvent(store: JobsStore, kind: string, data: Record<string, unknown>) {
  switch (kind) {
    case 'job': {
      const job = (data.job ?? data) as Job
      if (job && typeof job.id === 'string') store.upsert(job, 'stream')
      break
    }
    case 'progress': {
      if (typeof data.job_id === 'string' && data.progress) store.applyProgress(data.job_id, data.progress as Progress)
      break
    }
    case 'output': {
      if (typeof data.job_id === 'string' && data.image) store.applyOutput(data.job_id, data.image as Image)
      break
    }
    case 'queue':
      store.applyQueue(data)
      if (typeof data.connected === 'boolean') status.comfyConnected = data.connected
      break
    case 'resync':
      store.resync(Array.isArray(data.jobs) ? (data.jobs as Job[]) : [], data.queue)
      break
    case 'status': {
      const q = applyStatus(data)
      if (q) store.applyQueue(q)
      break
    }
    case 'models':
      applyModelsEvent(data)
      break
    case 'download':
      applyDownloadEvent(data)
      break
    case 'import':
      applyImportEvent(data)
      break
  }
}

export function connectEvents(store: JobsStore, opts: EventsOptions = {}) {
  const ES = opts.EventSourceImpl ?? EventSource
  const url = opts.url ?? `${API_BASE}/events`
  const later = opts.setTimeoutImpl ?? ((fn, ms) => setTimeout(fn, ms))
  let source: EventSource | null = null
  let closed = false
  let delay = 1000
  let fresh = false
  let lastId = ''

  function open() {
    if (closed) return
    const es = new ES(fresh && lastId ? `${url}${url.includes('?') ? '&' : '?'}last_event_id=${encodeURIComponent(lastId)}` : url)
    source = es
    status.stream = fresh ? 'reconnecting' : 'connecting'
    es.onopen = () => {
      status.stream = 'open'
      delay = 1000
      if (fresh && !lastId) opts.onFreshConnect?.()
    }
    for (const kind of EVENT_KINDS) {
      es.addEventListener(kind, (e) => {
        const me = e as MessageEvent
        if (me.lastEventId) lastId = me.lastEventId
        const data = parse(me)
        if (data) handleEvent(store, kind, data)
      })
    }
    es.onerror = () => {
      if (closed) return
      if (es.readyState === 2 /* CLOSED */) {
        status.stream = 'reconnecting'
        es.close()
        fresh = true
        opts.onClosed?.()
        later(open, delay)
        delay = Math.min(delay * 2, 30000)
      } else {
        status.stream = 'reconnecting' // the browser is retrying with Last-Event-ID
      }
    }
  }

  open()
  return {
    close() {
      closed = true
      source?.close()
    },
    get source() {
      return source
    },
  }
}
