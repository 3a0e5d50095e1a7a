// ComfyUI connection and event-stream state for the status indicator.
import { reactive } from 'vue'

export const status = reactive({
  /** null until the first GET /status answer */
  comfyConnected: null as boolean | null,
  version: null as string | null,
  stream: 'connecting' as 'connecting' | 'open' | 'reconnecting',
})

/** Read what /status (or a `status` event) says, whatever its exact shape. */
export function applyStatus(s: unknown): { running: number; pending: number } | null {
  if (!s || typeof s !== 'object') return null
  const o = s as Record<string, unknown>
  const comfy = o.comfy as Record<string, unknown> | boolean | undefined
  let connected: unknown = undefined
  if (typeof comfy === 'boolean') connected = comfy
  else if (comfy && typeof comfy === 'object') connected = comfy.connected ?? comfy.ok ?? comfy.reachable
  connected ??= o.comfy_connected ?? o.connected
  if (typeof connected === 'boolean') status.comfyConnected = connected
  const studio = o.studio as Record<string, unknown> | undefined
  const version = studio?.version ?? o.version ?? o.studio_version
  if (typeof version === 'string') status.version = version
  const q = (o.queue ?? o) as Record<string, unknown>
  if (typeof q.running === 'number' || typeof q.pending === 'number' || Array.isArray(q.running)) {
    const n = (v: unknown) => (typeof v === 'number' ? v : Array.isArray(v) ? v.length : 0)
    return { running: n(q.running), pending: n(q.pending) }
  }
  return null
}
