// The import of ComfyUI's outputs as the stream's `import` events report it (the Settings card and the Create
// page's note read it).
import { reactive } from 'vue'
import type { ImportStatus } from '../api/imports'

export const importState = reactive<{ status: ImportStatus | null }>({ status: null })

/** An `import` event: the same shape as GET /imports. */
export function applyImportEvent(data: Record<string, unknown>) {
  if (typeof data.running === 'boolean' && 'run' in data) importState.status = data as unknown as ImportStatus
}
