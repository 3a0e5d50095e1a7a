// "Send workflow to Studio": the open workflow, in both formats, to the studio's workflow routes.
// Kept apart from studio.js (which registers the menu entry) so its logic runs without ComfyUI's editor.
// ComfyUI imports every .js file of this folder into its editor: this one only exports functions.

export const STUDIO_API = "/studio/api/v1";
// Where the studio's id of a sent workflow is remembered: in the UI workflow's own `extra`, saved with it.
export const EXTRA_KEY = "comfyui_studio";

/** The CSRF token of the studio session (refreshed once when the access token has expired). */
export async function studioSession(fetchImpl) {
  const get = () =>
    fetchImpl(`${STUDIO_API}/session`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  let res = await get();
  if (res.status === 401) {
    const refreshed = await fetchImpl(`${STUDIO_API}/auth/refresh`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: "{}",
    });
    if (refreshed.ok) res = await get();
  }
  const env = await res.json().catch(() => null);
  const token = env?.ok ? env.data?.csrf_token : null;
  if (!token || !env.data?.user) {
    const err = new Error("Sign in to the studio first (it opens in a new tab), then send again.");
    err.code = "login_required";
    throw err;
  }
  return token;
}

async function call(fetchImpl, token, method, path, body) {
  const res = await fetchImpl(`${STUDIO_API}${path}`, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": token },
    body: JSON.stringify(body),
  });
  const env = await res.json().catch(() => null);
  if (!env?.ok) {
    const err = new Error(env?.error?.message ?? `The studio answered HTTP ${res.status}`);
    err.code = env?.error?.code ?? "bad_response";
    err.status = res.status;
    throw err;
  }
  return env.data;
}

/** The name the editor shows for the open workflow, else a plain one. */
export function workflowName(app) {
  const active = app?.extensionManager?.workflow?.activeWorkflow ?? app?.workflowManager?.activeWorkflow;
  const raw = active?.filename ?? active?.name ?? active?.path ?? "";
  const name = String(raw).split("/").pop().replace(/\.json$/i, "").trim();
  return name || "Workflow from ComfyUI";
}

/**
 * Send the open workflow: `app.graphToPrompt()` gives the UI workflow and the API prompt exactly as the
 * editor would queue them. The first send creates a studio workflow; later sends of the same workflow
 * (its `extra` remembers the id) become new versions of it when the user agrees.
 * `ui`: `{ confirm(question) → bool, toast(kind, title, text), open(url) }`.
 */
export async function sendToStudio(app, ui, fetchImpl = (...a) => fetch(...a)) {
  const { workflow, output } = await app.graphToPrompt();
  if (!output || !Object.keys(output).length) {
    ui.toast("warn", "Nothing to send", "This workflow has no nodes that ComfyUI would run.");
    return null;
  }
  let token;
  try {
    token = await studioSession(fetchImpl);
  } catch (err) {
    ui.toast("error", "Studio", err.message);
    if (err.code === "login_required") ui.open("/studio/");
    return null;
  }
  const document = { prompt: output, workflow };
  const known = workflow?.extra?.[EXTRA_KEY]?.workflow_id;
  const name = workflowName(app);
  let result = null;
  try {
    if (known && ui.confirm(`Send as a new version of this workflow in the studio?\n(Cancel sends it as a new workflow.)`)) {
      try {
        result = await call(fetchImpl, token, "PATCH", `/workflows/${encodeURIComponent(known)}`, {
          document,
          note: "sent from ComfyUI's editor",
        });
      } catch (err) {
        if (err.code !== "not_found" && err.code !== "forbidden") throw err;
      }
    }
    if (!result) result = await call(fetchImpl, token, "POST", "/workflows", { name, document });
  } catch (err) {
    ui.toast("error", "Studio refused the workflow", err.message);
    return null;
  }
  // Remember the studio's id in the workflow itself, so the next send can update it.
  if (app.graph) {
    app.graph.extra = app.graph.extra ?? {};
    app.graph.extra[EXTRA_KEY] = { workflow_id: result.id };
  }
  const notReady = result.readiness && result.readiness.ready === false;
  ui.toast(
    notReady ? "warn" : "success",
    `Sent to Studio: ${result.name} (v${result.version})`,
    notReady
      ? "It is kept but not ready: this ComfyUI lacks some of its nodes or models. The studio lists what to install."
      : "Assign it to an action slot in the studio's Workflows page.",
  );
  ui.open(`/studio/workflows/${encodeURIComponent(result.id)}`);
  return result;
}
