// Start-up: the session, the status, then the event stream that keeps everything live.
import { api, errorMessage } from './api/client'
import { connectEvents } from './api/events'
import { jobs } from './stores/jobs'
import { session } from './stores/session'
import { applyStatus, status } from './stores/status'
import { notifyJob, toast } from './stores/toasts'

let conn: ReturnType<typeof connectEvents> | null = null
let unlisten: (() => void) | null = null

export async function loadStatus() {
  try {
    const q = applyStatus(await api.status())
    if (q) jobs.applyQueue(q)
  } catch (e) {
    status.comfyConnected = null
    if (!(e instanceof Error && 'code' in e && e.code === 'unauthorized')) toast(errorMessage(e), 'error', 'Status')
  }
}

export async function startLive() {
  try {
    await api.bootstrap()
  } catch (e) {
    toast(errorMessage(e), 'error', "Couldn't start")
  }
  if (session.authRequired) return
  await loadStatus()
  unlisten ??= jobs.onTransition((job) => notifyJob(job))
  conn ??= connectEvents(jobs, {
    onFreshConnect: () => {
      // a new stream (not a browser resume): read the newest page and the counts again
      void loadStatus()
      jobs.paging.loaded = false
      jobs.paging.cursor = null
      jobs.paging.hasMore = true
      void jobs.loadMore(api)
    },
  })
}

export function stopLive() {
  conn?.close()
  conn = null
  unlisten?.()
  unlisten = null
}
