// The model files ComfyUI lists and what the default actions can do with them: read once
// (GET /models, GET /actions/status), then kept current by the stream's `models` events.
import { reactive } from 'vue'

export const MODEL_FOLDERS = ['checkpoints', 'loras', 'embeddings', 'upscale_models'] as const
export type ModelFolder = (typeof MODEL_FOLDERS)[number]
export type ModelLists = Record<ModelFolder, string[]>

/** GET /actions/status: the checkpoint the default workflows use. */
export interface CheckpointStatus {
  checkpoint: string | null
  available: string[]
  message: string | null
  upscale?: 'model' | 'resize'
  upscale_model?: string | null
}

export const models = reactive({
  lists: { checkpoints: [], loras: [], embeddings: [], upscale_models: [] } as ModelLists,
  status: null as CheckpointStatus | null,
  /** true once the lists were read (or arrived by event) */
  loaded: false,
})

type Listener = (before: ModelLists, status: CheckpointStatus | null) => void
const listeners = new Set<Listener>()

/** Called after every change that arrived by event (not after the first read). */
export function onModelsChanged(fn: Listener): () => void {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

function names(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

function readLists(raw: unknown): ModelLists | null {
  if (!raw || typeof raw !== 'object') return null
  const o = raw as Record<string, unknown>
  return { checkpoints: names(o.checkpoints), loras: names(o.loras), embeddings: names(o.embeddings), upscale_models: names(o.upscale_models) }
}

function readStatus(raw: unknown): CheckpointStatus | null {
  if (!raw || typeof raw !== 'object') return null
  const o = raw as Record<string, unknown>
  return {
    checkpoint: typeof o.checkpoint === 'string' ? o.checkpoint : null,
    available: names(o.available),
    message: typeof o.message === 'string' ? o.message : null,
    upscale: o.upscale === 'model' ? 'model' : 'resize',
    upscale_model: typeof o.upscale_model === 'string' ? o.upscale_model : null,
  }
}

/** A `models` event: `{models: {...lists}, status: {...as /actions/status}}`. */
export function applyModelsEvent(data: Record<string, unknown>) {
  const lists = readLists(data.models)
  if (!lists) return
  const before = models.lists
  models.lists = lists
  models.loaded = true
  const status = readStatus(data.status)
  if (status) models.status = status
  for (const fn of listeners) fn(before, models.status)
}

interface Getter {
  get<T>(path: string): Promise<T>
}

/** The first read; quietly nothing on a server without these routes or while ComfyUI is away. */
export async function loadModels(client: Getter) {
  const [lists, status] = await Promise.allSettled([client.get<unknown>('/models'), client.get<unknown>('/actions/status')])
  if (lists.status === 'fulfilled') {
    const got = readLists(lists.value)
    if (got) {
      models.lists = got
      models.loaded = true
    }
  }
  if (status.status === 'fulfilled') models.status = readStatus(status.value)
}

/** Files that are in `after` and not in `before`. */
export function added(before: string[], after: string[]): string[] {
  const had = new Set(before)
  return after.filter((x) => !had.has(x))
}
