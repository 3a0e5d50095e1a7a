// Routes the server answered 404 for: their controls are hidden rather than failing again.
import { reactive } from 'vue'
import { errorMessage, isMissingRoute } from '../api/client'
import { toast } from './toasts'

export type Feature =
  | 'generate'
  | 'queue.cancel'
  | 'queue.clear'
  | 'queue.interrupt'
  | 'queue.front'
  | 'jobs.delete'
  | 'uploads'
  | 'actions'
  | 'suggest'
  | 'preview'
  | 'history'
  | 'auth'
  | 'search'
  | 'likes'
  | 'bulk'

const missing = reactive(new Set<Feature>())

export function has(f: Feature): boolean {
  return !missing.has(f)
}

export function markMissing(f: Feature) {
  missing.add(f)
}

/**
 * Run a user-triggered call: a missing route hides its control (saying so once), any other failure
 * becomes an error toast. Returns undefined on failure.
 */
export async function attempt<T>(f: Feature, fn: () => Promise<T>, what = 'That'): Promise<T | undefined> {
  try {
    return await fn()
  } catch (e) {
    if (isMissingRoute(e) && f !== 'jobs.delete') {
      markMissing(f)
      toast(`${what} isn't available on this server yet.`, 'info')
    } else toast(errorMessage(e), 'error')
    return undefined
  }
}
