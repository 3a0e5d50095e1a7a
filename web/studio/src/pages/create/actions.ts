// Action slots (GET /actions) shown on image tiles, and the per-image commands beside them.
import { computed, ref } from 'vue'
import { api, ApiError, errorMessage, isMissingRoute } from '../../api/client'
import type { ActionSlot, Image, Job } from '../../api/types'
import { submittedJobs } from '../../api/types'
import { attempt, markMissing } from '../../stores/features'
import { finder } from '../../stores/finder'
import { jobs } from '../../stores/jobs'
import { onModelsChanged } from '../../stores/models'
import { notifyJob, toast } from '../../stores/toasts'

export const actionSlots = ref<ActionSlot[]>([])

/** Actions that run on one image from a tile or the viewer (masked ones belong to the Edit page). */
export const imageActions = computed(() => actionSlots.value.filter((a) => a.needs_image !== false && !a.needs_mask))
/** How many image actions get their own button on a tile; the rest are in its "more" menu. */
export const INLINE_ACTIONS = 2
let loaded = false

export async function loadActions() {
  if (loaded) return
  loaded = true
  try {
    const r = await api.actions()
    const list = Array.isArray(r) ? r : (r?.items ?? [])
    actionSlots.value = list.filter((a) => a && typeof a.slot === 'string')
  } catch (e) {
    if (isMissingRoute(e)) markMissing('actions')
    else loaded = false
  }
}

// ComfyUI's models changed: the slots' ready flags may have too.
onModelsChanged(() => {
  if (!loaded) return
  loaded = false
  void loadActions()
})

export async function runAction(slot: ActionSlot, image: Image, text?: string) {
  if (slot.ready === false) {
    toast(slot.problem || `${slot.label} can't run right now.`, 'info', slot.label)
    return
  }
  const r = await attempt('actions', () => api.runAction(slot.slot, image.id, text), slot.label)
  for (const job of r ? submittedJobs(r) : []) {
    if (job && typeof job === 'object' && 'id' in job) notifyJob(jobs.upsert(job, 'submit'))
  }
}

export async function copyText(text: string) {
  try {
    await navigator.clipboard.writeText(text)
    toast('Prompt copied.', 'success', 'Copied')
  } catch {
    toast("Couldn't copy: the browser refused clipboard access.", 'error', 'Copy')
  }
}

export async function deleteJob(job: Job, ask: (q: string) => boolean = (q) => window.confirm(q)) {
  if (!ask(`Delete job ${job.id} and its ${job.images.length === 1 ? 'image' : `${job.images.length} images`}? This can't be undone.`)) return
  try {
    await api.deleteJob(job.id)
    jobs.remove(job.id)
    finder.remove(job.id) // a search result too
  } catch (e) {
    if (e instanceof ApiError && e.code === 'method_not_allowed') {
      markMissing('jobs.delete')
      toast("Deleting isn't available on this server yet.", 'info', 'Delete')
    } else toast(errorMessage(e), 'error', 'Delete')
  }
}
