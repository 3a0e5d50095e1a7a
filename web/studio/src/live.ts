// Start-up: the session, the status, then the event stream that keeps everything live.
import { watch } from 'vue'
import { api, errorMessage, isMissingRoute } from './api/client'
import { connectPreviews } from './api/previews'
import { connectEvents } from './api/events'
import { jobs } from './stores/jobs'
import { session } from './stores/session'
import { applyStatus, status } from './stores/status'
import { notifyJob, refreshJobToast, toast } from './stores/toasts'

let conn: ReturnType<typeof connectEvents> | null = null
let unlisten: (() => void) | null = null
let stopWatches: (() => void)[] = []

/** Our jobs' places in ComfyUI's queue, read after the queue changed (never on a timer). */
let queueTimer: ReturnType<typeof setTimeout> | null = null
let queueMissing = false
function refreshPositions() {
  if (queueMissing || jobs.positionsInEvents.value) return
  if (queueTimer) clearTimeout(queueTimer)
  queueTimer = setTimeout(async () => {
    if (!jobs.list().some((j) => j.state === 'queued')) return
    try {
      jobs.applyQueue(await api.get<unknown>('/queue'))
    } catch (e) {
      if (isMissingRoute(e)) queueMissing = true
    }
  }, 250)
}

function startPreviews() {
  const previews = connectPreviews((f) => {
    const url = URL.createObjectURL(new Blob([f.bytes as BlobPart], { type: f.mime }))
    if (!jobs.applyPreview(f.promptId, url)) URL.revokeObjectURL(url)
  })
  const running = () => jobs.order.value.slice(0, 200).some((id) => jobs.byId.get(id)?.state === 'running')
  stopWatches.push(watch(running, (on) => previews.want(on), { immediate: true }))
  stopWatches.push(() => previews.want(false))
}

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
    // no session route yet (or no accounts): the API works without one
    if (!isMissingRoute(e)) toast(errorMessage(e), 'error', "Couldn't start")
  }
  if (session.authRequired) return
  // Not awaited: the feed's first page and the status pill load side by side.
  void loadStatus()
  unlisten ??= jobs.onTransition((job) => notifyJob(job))
  if (!stopWatches.length) {
    stopWatches.push(watch(() => [jobs.queue.pending, jobs.queue.running, jobs.order.value.length], refreshPositions))
    startPreviews()
    stopWatches.push(jobs.onResyncGap(() => void jobs.refreshTop(api)))
    stopWatches.push(jobs.onQuietUpdate(refreshJobToast))
  }
  conn ??= connectEvents(jobs, {
    // 401 (session expired) closes the stream: a status read goes through the refresh/login path
    onClosed: () => void loadStatus(),
    onFreshConnect: () => {
      // a new stream with nothing to resume from: read the newest page and the counts again
      void loadStatus()
      void jobs.refreshTop(api)
    },
  })
}

export function stopLive() {
  conn?.close()
  conn = null
  unlisten?.()
  unlisten = null
  for (const s of stopWatches) s()
  stopWatches = []
}
