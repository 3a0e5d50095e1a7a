// Select mode: images picked in the feed (checkboxes, Ctrl/Cmd-click, Shift-click for a range) and
// what can be done to all of them at once: delete or like their jobs (POST /jobs/bulk), download
// them as one zip, run an action on each.
import { computed, reactive, shallowReactive } from 'vue'
import { api as defaultApi, errorMessage, type ApiClient } from '../api/client'
import type { ActionSlot, BulkOp, BulkResult, Image, Job } from '../api/types'
import { submittedJobs } from '../api/types'
import { finder } from './finder'
import { jobs } from './jobs'
import { setLikedLocal } from './likes'
import { toast } from './toasts'

/** the server's limit for one bulk request and one zip */
export const MAX_BULK = 200

export function createSelection() {
  const state = reactive({ active: false })
  const picked = shallowReactive(new Map<string, Image>())
  let anchor: string | null = null
  const count = computed(() => picked.size)

  function enter() {
    state.active = true
  }
  function exit() {
    state.active = false
    picked.clear()
    anchor = null
  }
  function has(id: string) {
    return picked.has(id)
  }
  function toggle(img: Image, on = !picked.has(img.id)) {
    state.active = true
    if (on) picked.set(img.id, img)
    else picked.delete(img.id)
    anchor = img.id
  }
  /**
   * A click on a tile while selecting (or with a modifier): Shift adds every image between the last
   * clicked one and this one, in feed order; anything else toggles this one.
   */
  function click(img: Image, order: readonly Image[], mods: { shift?: boolean } = {}) {
    const from = anchor ? order.findIndex((i) => i.id === anchor) : -1
    const to = order.findIndex((i) => i.id === img.id)
    if (mods.shift && from >= 0 && to >= 0) {
      state.active = true
      const [a, b] = from < to ? [from, to] : [to, from]
      for (let i = a; i <= b; i++) picked.set(order[i].id, order[i])
      anchor = img.id
      return
    }
    toggle(img)
  }
  function images(): Image[] {
    return [...picked.values()]
  }
  /** the jobs of the picked images, in the order they were picked, each once */
  function jobIds(): string[] {
    return [...new Set(images().map((i) => i.job_id).filter((x): x is string => !!x))]
  }
  function dropJob(jobId: string) {
    for (const [id, img] of picked) if (img.job_id === jobId) picked.delete(id)
  }

  return { state, picked, count, enter, exit, has, toggle, click, images, jobIds, dropJob }
}

export type Selection = ReturnType<typeof createSelection>
export const selection = createSelection()

function lookup(id: string): Job | undefined {
  return finder.job(id)
}
function plural(n: number, one: string, many = one + 's') {
  return `${n} ${n === 1 ? one : many}`
}

async function bulk(client: ApiClient, ids: string[], op: BulkOp): Promise<BulkResult> {
  const out: BulkResult = { op, done: [], failed: [] }
  for (let i = 0; i < ids.length; i += MAX_BULK) {
    const chunk = ids.slice(i, i + MAX_BULK)
    try {
      const r = await client.bulkJobs(chunk, op)
      out.done.push(...(r.done ?? []))
      out.failed.push(...(r.failed ?? []))
    } catch (e) {
      const message = errorMessage(e)
      out.failed.push(...chunk.map((id) => ({ id, code: (e as { code?: string }).code ?? 'error', message })))
    }
  }
  return out
}

/**
 * Apply a bulk answer to the stores and the selection: deleted jobs leave the feed and the selection,
 * liked jobs show it at once, failed ones stay selected and are named in one toast.
 */
export function applyBulkResult(sel: Selection, r: BulkResult, verb: string) {
  for (const id of r.done) {
    if (r.op === 'delete') {
      jobs.remove(id)
      finder.remove(id)
      sel.dropJob(id)
    } else setLikedLocal(id, null, r.op === 'like')
  }
  if (r.failed.length) {
    const first = r.failed[0]
    toast(
      `${plural(r.failed.length, 'job')} couldn't be ${verb}: ${first.message || first.code}${r.failed.length > 1 ? ' (and others)' : ''}`,
      'error',
      'Selection',
    )
  }
}

export async function deleteSelected(
  sel: Selection = selection,
  client: ApiClient = defaultApi,
  ask: (q: string) => boolean = (q) => window.confirm(q),
): Promise<BulkResult | null> {
  const ids = sel.jobIds()
  if (!ids.length) return null
  const images = ids.reduce((n, id) => n + (lookup(id)?.images.length ?? 0), 0)
  const q = `Delete ${plural(ids.length, 'job')} and ${images === 1 ? 'its image' : `their ${plural(images, 'image')}`}? Every image of a selected job is deleted. This can't be undone.`
  if (!ask(q)) return null
  const r = await bulk(client, ids, 'delete')
  applyBulkResult(sel, r, 'deleted')
  if (r.done.length) toast(`Deleted ${plural(r.done.length, 'job')}.`, 'success', 'Selection')
  if (!sel.count.value) sel.exit()
  return r
}

/**
 * Like or unlike the picked images. A job whose every image is picked goes through POST /jobs/bulk;
 * the images of a partly picked job are changed one by one, so nothing unpicked changes.
 */
export async function likeSelected(liked: boolean, sel: Selection = selection, client: ApiClient = defaultApi): Promise<BulkResult> {
  const byJob = new Map<string, Set<string>>()
  for (const img of sel.images()) {
    if (!img.job_id) continue
    if (!byJob.has(img.job_id)) byJob.set(img.job_id, new Set())
    byJob.get(img.job_id)!.add(img.id)
  }
  const whole: string[] = []
  const partial: [string, Set<string>][] = []
  for (const [jobId, ids] of byJob) {
    const all = lookup(jobId)?.images ?? []
    if (all.length && all.every((i) => ids.has(i.id))) whole.push(jobId)
    else partial.push([jobId, ids])
  }
  const op: BulkOp = liked ? 'like' : 'unlike'
  const r = whole.length ? await bulk(client, whole, op) : { op, done: [], failed: [] }
  for (const [jobId, ids] of partial) {
    let ok = true
    for (const id of ids) {
      try {
        await client.setLiked(id, liked)
        setLikedLocal(jobId, new Set([id]), liked)
      } catch (e) {
        ok = false
        r.failed.push({ id: jobId, code: (e as { code?: string }).code ?? 'error', message: errorMessage(e) })
        break
      }
    }
    if (ok) r.done.push(jobId)
  }
  applyBulkResult(sel, { ...r, done: r.done.filter((id) => whole.includes(id)) }, liked ? 'liked' : 'unliked')
  return r
}

/** Run one action on every picked image, one request after the other; the new jobs join the feed. */
export async function runOnSelected(slot: ActionSlot, sel: Selection = selection, client: ApiClient = defaultApi) {
  if (slot.ready === false) {
    toast(slot.problem || `${slot.label} can't run right now.`, 'info', slot.label)
    return { queued: 0, failed: 0 }
  }
  let queued = 0
  let failed = 0
  let lastError = ''
  for (const img of sel.images()) {
    try {
      const r = await client.runAction(slot.slot, img.id)
      for (const job of r ? submittedJobs(r) : []) if (job && typeof job === 'object' && 'id' in job) jobs.upsert(job, 'submit')
      queued++
    } catch (e) {
      failed++
      lastError = errorMessage(e)
    }
  }
  if (queued) toast(`${slot.label}: queued for ${plural(queued, 'image')}.`, 'success', slot.label)
  if (failed) toast(`${plural(failed, 'image')} couldn't run: ${lastError}`, 'error', slot.label)
  return { queued, failed }
}

/** The zip link for the picked images (the server takes up to 200). */
export function archiveUrl(sel: Selection = selection, client: ApiClient = defaultApi): string | null {
  const ids = [...sel.picked.keys()]
  return ids.length && ids.length <= MAX_BULK ? client.archiveUrl(ids) : null
}
