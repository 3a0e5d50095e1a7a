// Boards: the user's named collections of gallery images (GET/POST/PATCH/DELETE /boards). A board is a
// filter of the feed (the finder's `board`); images join it by drag-and-drop, from a tile's menu or from
// the selection, and leave it from the tile's menu while it is the filter.
import { computed, reactive, shallowRef } from 'vue'
import { api as defaultApi, errorMessage, type ApiClient } from '../api/client'
import type { Board, BoardChange, Image } from '../api/types'
import { finder as defaultFinder, type Finder } from './finder'
import { toast } from './toasts'

/** what a board needs of an image: its id, and its job's to update the feed */
export type ImageRef = Pick<Image, 'id' | 'job_id'>

/** the drag-and-drop type a tile carries: its image id */
export const IMAGE_DRAG_TYPE = 'application/x-studio-image'
export const MAX_NAME = 64
const MAX_CHANGE = 200

/** What the server would refuse of a name, said before asking it; null when the name is fine. */
export function nameProblem(raw: string, boards: readonly Board[] = [], except: string | null = null): string | null {
  const name = raw.normalize('NFC').trim()
  if (!name) return 'Give the board a name.'
  if ([...name].length > MAX_NAME) return `At most ${MAX_NAME} characters.`
  if (/[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u.test(name)) return 'No control characters, please.'
  const key = name.toLocaleLowerCase().split(/\s+/).join(' ')
  if (boards.some((b) => b.id !== except && b.name.toLocaleLowerCase().split(/\s+/).join(' ') === key)) {
    return 'You already have a board with this name.'
  }
  return null
}

/** The images a drag carries ([{id, job_id}], as a tile puts them); nothing when it carries something else. */
export function droppedImages(data: string): ImageRef[] {
  try {
    const parsed: unknown = JSON.parse(data)
    if (!Array.isArray(parsed)) return []
    return parsed.filter((i): i is ImageRef => !!i && typeof i.id === 'string' && /^i_[0-9A-Z]{26}$/.test(i.id))
  } catch {
    return []
  }
}

/** What a tile's drag carries: the picked images when the tile is one of them, else the tile's own. */
export function dragPayload(image: ImageRef, picked: readonly ImageRef[]): string {
  const images = picked.some((i) => i.id === image.id) ? picked : [image]
  return JSON.stringify(images.map((i) => ({ id: i.id, job_id: i.job_id })))
}

function byName(a: Board, b: Board) {
  return a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || a.id.localeCompare(b.id)
}

export function createBoards(opts: { client?: ApiClient; finder?: Finder } = {}) {
  const client = () => opts.client ?? defaultApi
  const finder = opts.finder ?? defaultFinder
  const items = shallowRef<Board[]>([])
  const state = reactive({ loaded: false, loading: false, error: '' })
  /** the images the "Add to board" dialog is open for (null: closed) */
  const picking = shallowRef<ImageRef[] | null>(null)
  const current = computed(() => items.value.find((b) => b.id === finder.filters.board) ?? null)

  function put(board: Board) {
    const rest = items.value.filter((b) => b.id !== board.id)
    items.value = [...rest, board].sort(byName)
  }

  async function load() {
    if (state.loading) return
    state.loading = true
    try {
      const r = await client().listBoards()
      items.value = [...(r.items ?? [])].sort(byName)
      state.loaded = true
      state.error = ''
      // a board deleted elsewhere stops filtering
      if (finder.filters.board && !items.value.some((b) => b.id === finder.filters.board)) void finder.setFilter({ board: null })
    } catch (e) {
      state.error = errorMessage(e)
    } finally {
      state.loading = false
    }
  }

  async function create(name: string): Promise<Board | null> {
    try {
      const board = await client().createBoard(name.normalize('NFC').trim())
      put(board)
      return board
    } catch (e) {
      toast(errorMessage(e), 'error', 'Boards')
      return null
    }
  }

  async function rename(id: string, name: string): Promise<boolean> {
    try {
      put(await client().renameBoard(id, name.normalize('NFC').trim()))
      return true
    } catch (e) {
      toast(errorMessage(e), 'error', 'Boards')
      return false
    }
  }

  async function remove(id: string): Promise<boolean> {
    try {
      await client().deleteBoard(id)
      items.value = items.value.filter((b) => b.id !== id)
      if (finder.filters.board === id) void finder.setFilter({ board: null })
      return true
    } catch (e) {
      toast(errorMessage(e), 'error', 'Boards')
      return false
    }
  }

  /** Select a board as the feed's filter, or the one selected again: back to every image. */
  function show(id: string | null) {
    void load() // counts and covers as they are now (jobs deleted meanwhile leave them)
    return finder.setFilter({ board: finder.filters.board === id ? null : id })
  }

  async function change(board: Board, add: string[], remove: string[]): Promise<BoardChange | null> {
    let last: BoardChange | null = null
    const failed: BoardChange['failed'] = []
    const added: string[] = []
    const removed: string[] = []
    const ops: [string[], string[]][] = []
    for (let i = 0; i < add.length; i += MAX_CHANGE) ops.push([add.slice(i, i + MAX_CHANGE), []])
    for (let i = 0; i < remove.length; i += MAX_CHANGE) ops.push([[], remove.slice(i, i + MAX_CHANGE)])
    try {
      for (const [a, r] of ops) {
        last = await client().changeBoardImages(board.id, { add: a, remove: r })
        put(last.board)
        added.push(...last.added)
        removed.push(...last.removed)
        failed.push(...last.failed)
      }
    } catch (e) {
      toast(errorMessage(e), 'error', board.name)
      return null
    }
    if (failed.length) toast(`${failed.length === 1 ? 'One image' : `${failed.length} images`} couldn't be changed: ${failed[0].message}`, 'error', board.name)
    return last && { board: last.board, added, removed, failed }
  }

  /** Put images in a board (a tile dropped on it, the "Add to board" dialog). */
  async function addImages(board: Board, images: readonly ImageRef[]) {
    const ids = [...new Set(images.map((i) => i.id))]
    if (!ids.length) return null
    const r = await change(board, ids, [])
    if (r && r.added.length) toast(`Added ${r.added.length === 1 ? 'an image' : `${r.added.length} images`} to ${board.name}.`, 'success', 'Boards')
    // the feed filtered by this board shows them from its next search
    if (r && r.added.length && finder.filters.board === board.id) void finder.run()
    return r
  }

  /** Take images out of a board; a job with no image left in the board being shown leaves the results. */
  async function removeImages(board: Board, images: readonly ImageRef[]) {
    const ids = [...new Set(images.map((i) => i.id))]
    if (!ids.length) return null
    const r = await change(board, [], ids)
    if (!r) return null
    if (finder.filters.board === board.id) {
      const gone = new Set(r.removed)
      for (const jobId of new Set(images.map((i) => i.job_id))) {
        const job = jobId ? finder.job(jobId) : undefined
        if (job && job.images.every((i) => gone.has(i.id))) finder.remove(job.id)
      }
    }
    toast(`Removed ${r.removed.length === 1 ? 'an image' : `${r.removed.length} images`} from ${board.name}.`, 'success', 'Boards')
    return r
  }

  return {
    items,
    state,
    picking,
    current,
    load,
    create,
    rename,
    remove,
    show,
    addImages,
    removeImages,
    /** open the "Add to board" dialog for these images */
    pick(images: ImageRef[]) {
      picking.value = images.length ? images : null
    },
    closePicker() {
      picking.value = null
    },
  }
}

export type Boards = ReturnType<typeof createBoards>
export const boards = createBoards()
