// Edits in progress kept in IndexedDB (one draft per source image) until they are submitted or discarded,
// so a reload or a crash loses nothing. The image itself is not stored: it is read again by its id.
import type { EditDoc, Layer, Padding } from './editor'
import type { Raster } from './raster'

const DB_NAME = 'studio-editor'
const STORE = 'drafts'
export const DRAFT_VERSION = 1

export interface DraftLayer {
  id: string
  kind: 'mask' | 'paint'
  name: string
  visible: boolean
  opacity: number
  color: [number, number, number]
  width: number
  height: number
  /** the raster's bytes (structured-cloned by IndexedDB) */
  pixels: ArrayBuffer
}

export interface Draft {
  version: number
  imageId: string
  width: number
  height: number
  pad: Padding
  activeId: string
  seq: number
  /** bottom to top, the image's place marked by `imageIndex` */
  imageIndex: number
  imageVisible: boolean
  imageOpacity: number
  layers: DraftLayer[]
  savedAt: number
}

export function toDraft(doc: EditDoc): Draft {
  const image = doc.layers.findIndex((l) => l.kind === 'image')
  return {
    version: DRAFT_VERSION,
    imageId: doc.imageId,
    width: doc.width,
    height: doc.height,
    pad: { ...doc.pad },
    activeId: doc.activeId,
    seq: doc.seq,
    imageIndex: image,
    imageVisible: doc.layers[image]?.visible ?? true,
    imageOpacity: doc.layers[image]?.opacity ?? 1,
    layers: doc.layers
      .filter((l): l is Layer & { kind: 'mask' | 'paint' } => l.kind !== 'image')
      .map((l) => ({
        id: l.id,
        kind: l.kind,
        name: l.name,
        visible: l.visible,
        opacity: l.opacity,
        color: [...l.color] as [number, number, number],
        width: l.raster.width,
        height: l.raster.height,
        pixels: l.raster.data.slice().buffer,
      })),
    savedAt: Date.now(),
  }
}

/** The document a draft describes, over the image's pixels; null when the draft does not fit the image. */
export function fromDraft(draft: Draft, image: Raster): EditDoc | null {
  if (draft.version !== DRAFT_VERSION || draft.width !== image.width || draft.height !== image.height) return null
  const width = draft.width + draft.pad.left + draft.pad.right
  const height = draft.height + draft.pad.top + draft.pad.bottom
  const layers: Layer[] = []
  for (const l of draft.layers) {
    const channels = l.kind === 'mask' ? 1 : 4
    if (l.width !== width || l.height !== height || l.pixels.byteLength !== width * height * channels) return null
    layers.push({
      id: l.id,
      kind: l.kind,
      name: l.name,
      visible: l.visible,
      opacity: l.opacity,
      color: l.color,
      raster: { width, height, channels, data: new Uint8ClampedArray(l.pixels) },
    })
  }
  const base: Layer = {
    id: 'image',
    kind: 'image',
    name: 'Image',
    visible: draft.imageVisible,
    opacity: draft.imageOpacity,
    color: [0, 0, 0],
    raster: image,
  }
  layers.splice(Math.max(0, Math.min(draft.imageIndex, layers.length)), 0, base)
  const activeId = layers.some((l) => l.id === draft.activeId) ? draft.activeId : layers[layers.length - 1].id
  return { imageId: draft.imageId, width: draft.width, height: draft.height, pad: { ...draft.pad }, layers, activeId, seq: draft.seq }
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'imageId' })
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

async function run<T>(mode: IDBTransactionMode, work: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open()
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode)
      const req = work(tx.objectStore(STORE))
      tx.oncomplete = () => resolve(req.result)
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error)
    })
  } finally {
    db.close()
  }
}

export const drafts = {
  save: (draft: Draft) => run('readwrite', (s) => s.put(draft)).then(() => undefined),
  load: (imageId: string) => run<Draft | undefined>('readonly', (s) => s.get(imageId)).then((d) => d ?? null),
  discard: (imageId: string) => run('readwrite', (s) => s.delete(imageId)).then(() => undefined),
}
