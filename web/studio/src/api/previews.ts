// Latent previews: the SSE stream carries none, so while one of our jobs is running we also open the
// WebSocket (/studio/api/v1/ws) and read only its binary preview frames:
// [u32 big-endian header length][header JSON {prompt_id, mime}][image bytes].
import { API_BASE } from './client'

export interface PreviewFrame {
  promptId: string
  mime: string
  bytes: Uint8Array
}

export function parsePreviewFrame(buf: ArrayBuffer): PreviewFrame | null {
  if (buf.byteLength < 4) return null
  const view = new DataView(buf)
  const n = view.getUint32(0, false)
  if (4 + n > buf.byteLength) return null
  try {
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)))
    if (typeof header?.prompt_id !== 'string') return null
    return { promptId: header.prompt_id, mime: String(header.mime || 'image/jpeg'), bytes: new Uint8Array(buf, 4 + n) }
  } catch {
    return null
  }
}

export function previewSocketUrl(loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${API_BASE}/ws`
}

export function connectPreviews(onFrame: (f: PreviewFrame) => void, WS: typeof WebSocket = WebSocket) {
  let ws: WebSocket | null = null
  let wanted = false
  let failures = 0
  let timer: ReturnType<typeof setTimeout> | null = null

  function open() {
    if (ws || !wanted) return
    const sock = new WS(previewSocketUrl())
    sock.binaryType = 'arraybuffer'
    ws = sock
    sock.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) {
        const f = parsePreviewFrame(e.data)
        if (f) onFrame(f)
      }
    }
    sock.onopen = () => {
      failures = 0
    }
    sock.onclose = () => {
      ws = null
      if (!wanted) return
      failures++
      if (failures > 5) return // no socket here (or it keeps failing): previews are optional
      timer = setTimeout(open, 1000 * failures)
    }
  }

  return {
    /** open while something runs, close when nothing does */
    want(on: boolean) {
      wanted = on
      if (on) open()
      else {
        if (timer) clearTimeout(timer)
        ws?.close()
        ws = null
      }
    },
  }
}
