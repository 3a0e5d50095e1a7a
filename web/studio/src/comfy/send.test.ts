// The editor-side "Send workflow to Studio" (web/comfy/studio_send.js) with a fake editor app and server.
import { describe, expect, it, vi } from 'vitest'
import { EXTRA_KEY, sendToStudio, workflowName, type EditorApp } from '../../../comfy/studio_send.js'

const ok = (data: unknown, status = 200) =>
  new Response(JSON.stringify({ ok: true, data, error: null, meta: {} }), { status, headers: { 'content-type': 'application/json' } })
const fail = (code: string, message: string, status: number) =>
  new Response(JSON.stringify({ ok: false, data: null, error: { code, message }, meta: {} }), { status, headers: { 'content-type': 'application/json' } })

function fakeApp(extra: Record<string, unknown> = {}): EditorApp {
  const workflow = { nodes: [{ id: 1, type: 'EmptyImage' }], links: [], extra }
  return {
    graphToPrompt: async () => ({ workflow, output: { '1': { class_type: 'EmptyImage', inputs: {} } } }),
    graph: { extra: { ...extra } },
    extensionManager: { workflow: { activeWorkflow: { filename: 'portraits.json' } } },
  }
}
const ui = () => ({ confirm: vi.fn(() => true), toast: vi.fn(), open: vi.fn() })

describe('send workflow to studio', () => {
  it('posts both formats with the session CSRF token and remembers the new id', async () => {
    const calls: [string, RequestInit | undefined][] = []
    const fetchImpl = vi.fn(async (url: string, init?: RequestInit) => {
      calls.push([url, init])
      if (url.endsWith('/session')) return ok({ csrf_token: 'tok', user: { username: 'owner' } })
      return ok({ id: 'w_1', name: 'portraits', version: 1, readiness: { ready: true } }, 201)
    })
    const app = fakeApp()
    const u = ui()
    const r = await sendToStudio(app, u, fetchImpl as unknown as typeof fetch)
    expect(r?.id).toBe('w_1')
    const [url, init] = calls[1]
    expect(url).toBe('/studio/api/v1/workflows')
    expect((init!.headers as Record<string, string>)['X-CSRF-Token']).toBe('tok')
    const body = JSON.parse(String(init!.body))
    expect(body.name).toBe('portraits')
    expect(body.document.prompt).toEqual({ '1': { class_type: 'EmptyImage', inputs: {} } })
    expect(body.document.workflow.nodes).toHaveLength(1)
    expect(app.graph!.extra![EXTRA_KEY]).toEqual({ workflow_id: 'w_1' })
    expect(u.open).toHaveBeenCalledWith('/studio/workflows/w_1')
    expect(u.toast.mock.calls[0][0]).toBe('success')
  })

  it('sends a workflow it sent before as a new version when the user agrees', async () => {
    const fetchImpl = vi.fn(async (url: string, init?: RequestInit) => {
      if (url.endsWith('/session')) return ok({ csrf_token: 'tok', user: { username: 'owner' } })
      expect(init!.method).toBe('PATCH')
      expect(url).toBe('/studio/api/v1/workflows/w_7')
      return ok({ id: 'w_7', name: 'p', version: 3, readiness: { ready: false } })
    })
    const u = ui()
    const r = await sendToStudio(fakeApp({ [EXTRA_KEY]: { workflow_id: 'w_7' } }), u, fetchImpl as unknown as typeof fetch)
    expect(r?.version).toBe(3)
    expect(u.toast.mock.calls[0][0]).toBe('warn') // not ready: said at once
  })

  it('asks for a login when the studio has no session, and shows a refusal', async () => {
    const u = ui()
    const noUser = vi.fn(async (url: string) => (url.endsWith('/session') ? ok({ csrf_token: 't', user: null, login_required: true }) : ok({})))
    expect(await sendToStudio(fakeApp(), u, noUser as unknown as typeof fetch)).toBeNull()
    expect(u.open).toHaveBeenCalledWith('/studio/')
    const refusing = vi.fn(async (url: string) =>
      url.endsWith('/session') ? ok({ csrf_token: 't', user: { username: 'o' } }) : fail('validation_error', 'node 3 is linked to node 9', 400),
    )
    const u2 = ui()
    expect(await sendToStudio(fakeApp(), u2, refusing as unknown as typeof fetch)).toBeNull()
    expect(u2.toast).toHaveBeenCalledWith('error', 'Studio refused the workflow', 'node 3 is linked to node 9')
  })

  it('names the workflow after the editor tab', () => {
    expect(workflowName({ graphToPrompt: async () => ({ workflow: {}, output: {} }), extensionManager: { workflow: { activeWorkflow: { filename: 'a/b/My flow.json' } } } })).toBe('My flow')
    expect(workflowName({ graphToPrompt: async () => ({ workflow: {}, output: {} }) })).toBe('Workflow from ComfyUI')
  })
})
