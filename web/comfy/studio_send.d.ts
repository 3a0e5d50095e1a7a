// Types for the studio's own tests of studio_send.js (ComfyUI loads only the .js files of this folder).
export const STUDIO_API: string
export const EXTRA_KEY: string
export interface SendUi {
  confirm(question: string): boolean
  toast(kind: string, title: string, text: string): void
  open(url: string): void
}
export interface EditorApp {
  graphToPrompt(): Promise<{ workflow: Record<string, unknown> & { extra?: Record<string, unknown> }; output: Record<string, unknown> }>
  graph?: { extra?: Record<string, unknown> }
  extensionManager?: unknown
  workflowManager?: unknown
}
export function studioSession(fetchImpl: typeof fetch): Promise<string>
export function workflowName(app: EditorApp): string
export function sendToStudio(
  app: EditorApp,
  ui: SendUi,
  fetchImpl?: typeof fetch,
): Promise<{ id: string; name: string; version: number } | null>
