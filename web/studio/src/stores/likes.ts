// Favourites: an image's `liked` flag, changed in every store at once and then on the server
// (PUT/DELETE /images/{id}/like); a refused change is put back.
import { api as defaultApi, errorMessage, isMissingRoute, type ApiClient } from '../api/client'
import type { Image, Job } from '../api/types'
import { markMissing } from './features'
import { finder } from './finder'
import { jobs } from './jobs'
import { toast } from './toasts'

type JobMap = Map<string, Job>

/** The maps holding jobs: the live feed's and the search results'. */
let maps: () => JobMap[] = () => [jobs.byId, finder.byId]
export function useMaps(m: () => JobMap[]) {
  maps = m
}

/** Set these images' liked flag wherever their job is held; `imageIds` null: every image of the job. */
export function setLikedLocal(jobId: string, imageIds: Set<string> | null, liked: boolean) {
  for (const map of maps()) {
    const j = map.get(jobId)
    if (!j) continue
    const hit = (i: Image) => (imageIds === null || imageIds.has(i.id)) && !!i.liked !== liked
    if (!j.images.some(hit)) continue
    map.set(jobId, { ...j, images: j.images.map((i) => (hit(i) ? { ...i, liked } : i)) })
  }
}

/** The image as the stores hold it now (a tile's layout may carry an older copy). */
export function current(img: Image): Image {
  if (!img.job_id) return img
  for (const map of maps()) {
    const found = map.get(img.job_id)?.images.find((i) => i.id === img.id)
    if (found) return found
  }
  return img
}

export function isLiked(img: Image): boolean {
  return !!current(img).liked
}

const pending = new Set<string>()

/** Like or unlike one image: shown at once, undone if the server refuses. */
export async function toggleLike(img: Image, client: ApiClient = defaultApi): Promise<boolean> {
  const liked = !isLiked(img)
  if (pending.has(img.id) || !img.job_id) return !liked
  pending.add(img.id)
  const only = new Set([img.id])
  setLikedLocal(img.job_id, only, liked)
  try {
    await client.setLiked(img.id, liked)
    return liked
  } catch (e) {
    setLikedLocal(img.job_id, only, !liked)
    if (isMissingRoute(e) && (e as { code?: string }).code === 'method_not_allowed') markMissing('likes')
    toast(errorMessage(e), 'error', liked ? 'Like' : 'Unlike')
    return !liked
  } finally {
    pending.delete(img.id)
  }
}
