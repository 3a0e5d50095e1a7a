// The app's pages: vue-router in history mode under /studio/ (real URLs, back/forward, deep links).
// The Create page ships in the main bundle; every other page is its own lazily loaded chunk.
// Pages from other issues (Explore, Edit, Storage…) add a route here and, if they belong in the
// top bar, an entry in NAV.
import { createRouter, createWebHistory, type RouteRecordRaw, type Router, type RouterHistory } from 'vue-router'
import CreatePage from './pages/create/CreatePage.vue'

export const BASE = '/studio/'

export interface NavEntry {
  /** the route name the link goes to */
  name: string
  label: string
  /** route names that count as this section (a workflow's page is inside Workflows) */
  section: string[]
}

export const NAV: NavEntry[] = [
  { name: 'create', label: 'Create', section: ['create'] },
  { name: 'edit', label: 'Edit', section: ['edit'] },
  { name: 'explore', label: 'Explore', section: ['explore'] },
  { name: 'workflows', label: 'Workflows', section: ['workflows', 'workflow', 'actions'] },
  { name: 'shortcodes', label: 'Shortcodes', section: ['shortcodes'] },
  { name: 'settings', label: 'Settings', section: ['settings', 'trash'] },
]

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'create', component: CreatePage, meta: { title: 'Create' } },
  {
    path: '/explore',
    name: 'explore',
    component: () => import('./pages/explore/ExplorePage.vue'),
    meta: { title: 'Explore' },
  },
  {
    // no id: pick or drop an image to edit (it is uploaded first)
    path: '/edit/:imageId(i_[0-9A-Za-z]+)?',
    name: 'edit',
    component: () => import('./pages/edit/EditPage.vue'),
    props: (r) => ({ imageId: typeof r.params.imageId === 'string' && r.params.imageId ? r.params.imageId : undefined }),
    meta: { title: 'Edit' },
  },
  {
    path: '/workflows',
    name: 'workflows',
    component: () => import('./pages/workflows/WorkflowsPage.vue'),
    meta: { title: 'Workflows' },
  },
  {
    // ids are ULIDs with a prefix: capitals, digits and _ (the server's page route serves them too)
    path: '/workflows/:id(w_[0-9A-Za-z_]+)',
    name: 'workflow',
    component: () => import('./pages/workflows/WorkflowPage.vue'),
    props: (r) => ({ workflowId: r.params.id }),
    meta: { title: 'Workflow' },
  },
  {
    path: '/actions',
    name: 'actions',
    component: () => import('./pages/workflows/ActionsPage.vue'),
    meta: { title: 'Action slots' },
  },
  {
    path: '/shortcodes',
    name: 'shortcodes',
    component: () => import('./pages/shortcodes/ShortcodesPage.vue'),
    meta: { title: 'Shortcodes' },
  },
  {
    path: '/settings',
    name: 'settings',
    component: () => import('./pages/settings/SettingsPage.vue'),
    meta: { title: 'Settings' },
  },
  { path: '/trash', name: 'trash', component: () => import('./pages/trash/TrashPage.vue'), meta: { title: 'Trash' } },
  {
    path: '/:rest(.*)*',
    name: 'not-found',
    component: () => import('./pages/NotFoundPage.vue'),
    meta: { title: 'Not found' },
  },
]

export function makeRouter(history: RouterHistory = createWebHistory(BASE)): Router {
  const router = createRouter({
    history,
    routes,
    scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
  })
  router.beforeEach((to) => {
    // links from before the router (#/settings) still land where they meant
    if (to.path === '/' && to.hash.startsWith('#/')) return { path: to.hash.slice(1), hash: '', replace: true }
  })
  router.afterEach((to) => {
    const title = typeof to.meta.title === 'string' ? to.meta.title : ''
    if (typeof document !== 'undefined') document.title = title && to.name !== 'create' ? `${title} · Studio` : 'Studio'
  })
  return router
}

/** Whether a nav entry is the section the current route belongs to. */
export function inSection(entry: NavEntry, routeName: unknown): boolean {
  return typeof routeName === 'string' && entry.section.includes(routeName)
}
