// Who is signed in, and whether the login view must be shown.
import { reactive } from 'vue'
import { api } from '../api/client'
import type { Session, User } from '../api/types'

export const session = reactive({
  user: null as User | null,
  /** the server answered 401 even after a refresh, or says a login is needed */
  authRequired: false,
  setupRequired: false,
  /** a loopback owner session (no password, nothing to log out of) */
  local: false,
  loaded: false,
})

export function applySession(s: Session | null) {
  const raw = s as (Session & { username?: string }) | null
  session.user = raw?.user ?? (raw?.username ? { username: raw.username } : null)
  session.loaded = true
  session.local = !!s?.local
  session.setupRequired = !!s?.setup_required && !session.user
  if (s) session.authRequired = !session.user && (!!s.login_required || !!s.setup_required)
}

api.hooks.onSession = applySession
api.hooks.onAuthRequired = () => {
  session.authRequired = true
}
