"""The management pages in a real Chromium against the studio on the test host: workflows, action slots,
shortcodes, settings, the router's deep links, and "Send workflow to Studio" with a stand-in editor page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from studio_browser import (
    ARTIFACTS,
    Studio,
    StudioPage,
    eventually,
    needs_chromium,
    studio_on_test_host,
    studio_page,
)
from test_api_jobs import wait_for_state

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
UI_PASSTHROUGH = FIXTURES / "ui_workflows" / "passthrough.json"


@pytest_asyncio.fixture(loop_scope="module")
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    async with studio_on_test_host(tmp_path, node_delay=0.05) as s:
        yield s


async def goto(ui: StudioPage, url: str, heading: str) -> None:
    await ui.page.goto(url, wait_until="domcontentloaded")
    await ui.page.get_by_role("heading", name=heading, level=1).wait_for()


async def workflow_named(studio: Studio, name: str) -> dict:
    status, body = await studio.api.get("/workflows")
    assert status == 200, body
    summary = next(w for w in body["data"] if w["name"] == name)
    status, body = await studio.api.get(f"/workflows/{summary['id']}")
    return body["data"]


async def test_upload_a_ui_workflow_map_a_parameter_and_assign_it_to_the_upscale_slot(
    studio: Studio, ui: StudioPage, tmp_path: Path
) -> None:
    page = ui.page
    await goto(ui, studio.url + "/workflows", "Workflows")
    await page.locator("[data-workflow]").first.wait_for()
    await ui.shot("1-list")

    # A broken API graph: the backend's error is shown next to the file, naming the node at fault.
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"1": {"class_type": "ImageInvert", "inputs": {"image": ["9", 0]}}}))
    ui.expect_console_error("400 \\(Bad Request\\)")
    await page.get_by_test_id("workflow-file").set_input_files(str(broken))
    error = page.locator(".upload[data-state=error]", has_text="broken.json")
    await error.wait_for()
    assert "node 1 input image is linked to node 9" in await error.inner_text()

    # A graph with a node this ComfyUI lacks: kept, and the page says so at once.
    lacking = json.loads((FIXTURES / "actions" / "generate.api.json").read_text())
    lacking["9"] = {"class_type": "WombatSaver", "inputs": {"images": ["2", 0]}}
    (tmp_path / "wombat.json").write_text(json.dumps(lacking))
    await page.get_by_test_id("workflow-file").set_input_files(str(tmp_path / "wombat.json"))
    done = page.locator(".upload[data-state=done]", has_text="wombat.json")
    await done.wait_for()
    assert "Missing node WombatSaver" in await done.inner_text()
    await page.locator("[data-workflow]", has_text="wombat").get_by_text("Not ready").wait_for()

    # The UI-format workflow: converted, its App Mode parameters discovered.
    await page.get_by_test_id("workflow-file").set_input_files(str(UI_PASSTHROUGH))
    uploaded = page.locator(".upload[data-state=done]", has_text="passthrough.json")
    await uploaded.wait_for()
    await ui.shot("2-uploaded")
    await uploaded.get_by_role("link", name="Open passthrough").click()
    await page.get_by_role("heading", name="passthrough", level=1).wait_for()
    wf = await workflow_named(studio, "passthrough")
    assert page.url.endswith(f"/studio/workflows/{wf['id']}")
    for name in ("canvas_width", "upscale_method"):
        await page.locator(f"[data-param={name}]").wait_for()
    await page.locator("[data-node='4']", has_text="ImageScaleBy").wait_for()

    # Map one more parameter by picking a node and an input; the form checks it as we type.
    await page.get_by_role("button", name="+ Add parameter").click()
    new = page.locator("fieldset.param").last
    await new.get_by_label("Node").select_option("4")
    await new.get_by_label("Input").select_option("scale_by")
    assert await new.get_by_label("Name").input_value() == "scale_by"
    await new.get_by_label("Max").fill("1")
    await new.get_by_label("Default").fill("3")
    await new.get_by_text("Above the maximum 1").wait_for()
    await new.get_by_label("Max").fill("")
    await new.get_by_label("Default").fill("")
    save = page.get_by_role("button", name="Save parameters")
    async with page.expect_response(lambda r: "/workflows/" in r.url and r.request.method == "PATCH") as resp:
        await save.click()
    assert (await resp.value).status == 200
    await page.locator("[data-version='2']").wait_for()
    wf = await workflow_named(studio, "passthrough")
    scale = next(p for p in wf["head"]["parameters"] if p["name"] == "scale_by")
    assert (scale["type"], scale["selector"], scale["input"], scale["default"]) == ("FLOAT", "id:4", "scale_by", 1.5)
    # The version diff shows what changed in the inputs (none) and the parameters (one added).
    await page.locator(".diff").get_by_text("added scale_by").wait_for()
    await ui.shot("3-parameter-added", full_page=True)

    # Assign it to the upscale slot on the board, by select; and drag it onto upscale_creative.
    await page.get_by_role("link", name="assign to a slot").click()
    await page.get_by_role("heading", name="Action slots", level=1).wait_for()
    upscale = page.locator("[data-slot=upscale]")
    async with page.expect_response(lambda r: r.url.endswith("/actions/upscale") and r.request.method == "PATCH"):
        await upscale.get_by_label("Workflow for upscale").select_option(wf["id"])
    await page.locator(".palette [data-workflow]", has_text="passthrough").drag_to(
        page.locator("[data-slot=upscale_creative]")
    )

    async def assigned() -> bool:
        status, body = await studio.api.get("/actions")
        slots = {a["slot"]: a["workflow_id"] for a in body["data"]}
        return slots["upscale"] == wf["id"] and slots["upscale_creative"] == wf["id"]

    await eventually(assigned, what="upscale and upscale_creative to run the uploaded workflow")
    await ui.shot("4-slots")

    # A test run of a slot with its parameters, on an image from the feed.
    source = await studio.generate("a test card")
    vary = page.locator("[data-slot=vary_subtle]")
    await vary.get_by_role("button", name="Test run").click()
    await vary.get_by_role("radio", name=source["images"][0]["id"]).check()
    await vary.get_by_role("button", name="Test run").last.click()
    await vary.locator(".out img").wait_for(timeout=20_000)
    assert "Done: 1 image(s)." in await vary.get_by_role("status").inner_text()
    await ui.shot("5-test-run")
    # Back and forward move between the real URLs.
    await page.go_back()
    await page.get_by_role("heading", name="passthrough", level=1).wait_for()
    await page.go_forward()
    await page.get_by_role("heading", name="Action slots", level=1).wait_for()

    # Deleting it is refused while slots run it, with the backend's reason and an offer to reassign them.
    await page.goto(f"{studio.url}/workflows/{wf['id']}", wait_until="domcontentloaded")
    await page.get_by_role("button", name="Delete workflow…").click()
    ui.expect_console_error("409 \\(Conflict\\)")
    await page.get_by_role("alertdialog").get_by_role("button", name="Delete", exact=True).click()
    refusal = page.get_by_role("alertdialog").get_by_role("alert")
    await refusal.wait_for()
    assert "upscale, upscale_creative" in await refusal.inner_text()
    standin = await workflow_named(studio, "stand-in upscale")
    for slot in ("upscale", "upscale_creative"):
        await page.get_by_label(f"New workflow for {slot}", exact=True).select_option(standin["id"])
    await page.get_by_role("button", name="Reassign and delete").click()
    await page.get_by_role("heading", name="Workflows", level=1).wait_for()
    status, body = await studio.api.get(f"/workflows/{wf['id']}")
    assert status == 404
    status, body = await studio.api.get("/actions/upscale")
    assert body["data"]["workflow_id"] == standin["id"]


async def test_a_new_shortcode_previews_its_patch_and_the_create_page_applies_it(
    studio: Studio, ui: StudioPage
) -> None:
    page = ui.page
    generate = (await studio.api.get("/actions/generate"))[1]["data"]["workflow_id"]
    await goto(ui, studio.url + "/shortcodes", "Shortcodes")
    await page.locator("[data-code=ar]").wait_for()
    await page.get_by_role("button", name="+ New code").click()
    assert "edit=new" in page.url
    form = page.get_by_role("form", name="New shortcode")
    await form.get_by_label("Code", exact=True).fill("grain")
    await form.get_by_label("Type", exact=True).select_option("float")
    await form.get_by_label("Description (the autocomplete hint)").fill("film grain strength")
    await form.get_by_label("Min", exact=True).fill("0")
    await form.get_by_label("Max", exact=True).fill("1")
    target = form.locator("fieldset.target").first
    assert await target.get_by_label("Pick nodes from").input_value() == generate  # the generate slot's workflow
    await target.get_by_label("Node", exact=True).select_option("2")
    assert await target.get_by_label("Selector", exact=True).input_value() == "title:Blur"
    await target.get_by_label("Input", exact=True).select_option("sigma")
    await form.get_by_label("Sample prompt").fill("a fox in the snow --grain 0.3")
    await form.get_by_test_id("preview-tokens").get_by_text("--grain = 0.3").wait_for()
    patch = form.get_by_test_id("preview-patch")
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=preview-patch]').textContent.includes('/2/inputs/sigma')"
    )
    ops = json.loads(await patch.inner_text())
    assert {"op": "replace", "path": "/2/inputs/sigma", "value": 0.3} in ops
    await ui.shot("1-preview", full_page=True)
    # A value out of range is an error in the preview, before anything is saved.
    await form.get_by_label("Sample prompt").fill("a fox --grain 3")
    await form.locator(".notes .err").wait_for()
    await form.get_by_role("button", name="Create code").click()
    await page.locator("[data-code=grain]").wait_for()
    assert "edit=" not in page.url

    # The Create page: the new code autocompletes and patches the submitted graph.
    await page.get_by_role("link", name="Create", exact=True).click()
    await ui.ready()
    prompt = page.get_by_role("combobox")
    await prompt.click()
    await page.keyboard.type("a fox in the snow --gra", delay=10)
    await page.get_by_role("listbox", name="Shortcode suggestions").get_by_text("--grain").wait_for()
    await page.keyboard.press("Tab")
    await page.keyboard.type("0.3")
    await ui.shot("2-create-typed")
    async with page.expect_response(lambda r: r.url.endswith("/generate") and r.request.method == "POST") as sent:
        await page.keyboard.press("Enter")
    job_id = (await (await sent.value).json())["data"]["id"]
    job = await wait_for_state(studio.api, job_id, {"done", "error", "rejected"}, timeout=20)
    assert job["state"] == "done", job
    status, body = await studio.api.get(f"/jobs/{job_id}/history")
    assert status == 200, body
    graph = body["data"]["prompt"][2]
    assert graph["2"]["inputs"]["sigma"] == 0.3


async def test_shortcodes_import_all_or_nothing_from_the_page(studio: Studio, ui: StudioPage, tmp_path: Path) -> None:
    page = ui.page
    mood = {
        "code": "mood",
        "type": "enum",
        "description": "lighting mood",
        "choices": [{"value": "golden", "description": "warm", "extras": {"words": "golden hour"}}],
        "targets": [{"selector": "role:positive", "input": "text", "template": "{words}", "mode": "append"}],
    }
    good = tmp_path / "codes.json"
    good.write_text(json.dumps({"version": 1, "shortcodes": [mood]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "shortcodes": [{**mood, "code": "tone"}, {**mood, "code": "ar"}]}))
    await goto(ui, studio.url + "/shortcodes", "Shortcodes")
    picker = page.get_by_label("Shortcodes file to import")
    ui.expect_console_error("400 \\(Bad Request\\)")
    await picker.set_input_files(str(bad))
    await page.get_by_role("alert").get_by_text("nothing was imported").wait_for()
    assert await page.locator("[data-code=tone]").count() == 0
    await picker.set_input_files(str(good))
    await page.get_by_role("status").get_by_text("codes.json: 1 created, 0 updated.").wait_for()
    await page.locator("[data-code=mood]").wait_for()
    await page.get_by_label("Search shortcodes").fill("lighting")
    assert await page.locator("tbody tr[data-code]").count() == 1


async def test_settings_prompt_defaults_take_effect_on_the_create_page(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await goto(ui, studio.url + "/settings", "Settings")
    section = page.locator("[data-section=settings-prompt]")
    await section.get_by_label("Default aspect ratio").select_option("16:9")
    steps = section.get_by_label("Default sampling steps")
    await steps.fill("900")
    await section.get_by_text("At most 200").wait_for()
    assert await section.get_by_role("button", name="Save").is_disabled()
    await steps.fill("20")
    async with page.expect_response(lambda r: r.url.endswith("/settings") and r.request.method == "PATCH") as resp:
        await section.get_by_role("button", name="Save").click()
    assert (await resp.value).status == 200
    await page.get_by_test_id("dev-mode").get_by_text("Development mode is off.").wait_for()
    await page.locator("[data-user=owner]").wait_for()  # the owner manages users here
    await ui.shot("1-settings", full_page=True)

    await page.get_by_role("link", name="Create", exact=True).click()
    await ui.ready()
    await page.get_by_role("combobox").fill("a tower at noon")
    async with page.expect_response(lambda r: r.url.endswith("/generate") and r.request.method == "POST") as sent:
        await page.keyboard.press("Enter")
    job = (await (await sent.value).json())["data"]
    assert job["prompt_text"] == "a tower at noon --ar 16:9 --steps 20"
    done = await wait_for_state(studio.api, job["id"], {"done", "error"}, timeout=20)
    assert done["images"][0]["width"] > done["images"][0]["height"]


async def test_the_owner_manages_users_on_the_settings_page(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    await goto(ui, studio.url + "/settings", "Settings")
    await page.get_by_label("New user's name").fill("robin")
    await page.get_by_label("New user's password").fill("a long enough password 1")
    await page.get_by_role("button", name="Add user").click()
    robin = page.locator("[data-user=robin]")
    await robin.wait_for()
    await robin.get_by_role("button", name="Disable").click()
    await robin.get_by_text("user · disabled").wait_for()
    await robin.get_by_role("button", name="Enable").click()
    await robin.get_by_role("button", name="Reset password").click()
    await robin.get_by_label("New password for robin").fill("another long password 2")
    await robin.get_by_role("button", name="Set").click()
    await page.get_by_text("robin's password changed").wait_for()
    status, body = await studio.api.get("/users")
    row = next(u for u in body["data"]["items"] if u["username"] == "robin")
    assert row["disabled"] is False


async def test_deep_links_and_unknown_pages(studio: Studio, ui: StudioPage) -> None:
    page = ui.page
    wf = await workflow_named(studio, "stand-in generate")
    await goto(ui, f"{studio.url}/workflows/{wf['id']}", "stand-in generate")
    assert await page.title() == "Workflow · Studio"
    await page.locator("nav[aria-label=Pages] a[aria-current=page]", has_text="Workflows").wait_for()
    ui.expect_console_error("(404 \\(Not Found\\)|400 \\(Bad Request\\))")
    for missing in ("w_01ABCDEFGHJKMNPQRSTVWXYZ12", "w_AbC_12"):
        await page.goto(f"{studio.url}/workflows/{missing}", wait_until="domcontentloaded")
        await page.get_by_text("doesn't exist (any more)").wait_for()
    await page.goto(studio.url + "/no/such/page", wait_until="domcontentloaded")
    await page.get_by_role("heading", name="Nothing here").wait_for()
    await page.goto(studio.url + "/#/settings", wait_until="domcontentloaded")
    await page.get_by_role("heading", name="Settings", level=1).wait_for()
    assert page.url.endswith("/studio/settings")


async def test_send_workflow_to_studio_from_a_stand_in_editor(studio: Studio, browser: object) -> None:
    """studio_send.js in a page at ComfyUI's origin, with a fake `app` whose export is a known pair; the real
    studio's guards (session CSRF token, Origin) answer it."""
    prompt = json.loads((FIXTURES / "actions" / "generate.api.json").read_text())
    workflow = json.loads(UI_PASSTHROUGH.read_text())
    module = (REPO / "web" / "comfy" / "studio_send.js").read_text()
    editor = studio.run.host.url + "/stand-in-editor/"
    page_html = """<!doctype html><script type="module">
      import { sendToStudio } from './studio_send.js';
      window.sent = [];
      // as in the editor, the exported UI workflow is the graph serialized: its `extra` included
      const app = { graph: { extra: {} }, graphToPrompt: async () => ({
                      workflow: { ...window.exported.workflow, extra: app.graph.extra },
                      output: window.exported.output }),
                    extensionManager: { workflow: { activeWorkflow: { filename: 'from the editor.json' } } } };
      window.send = (again) => sendToStudio(app, { confirm: () => again, toast: (...t) => window.sent.push(t),
                                                   open: (url) => window.sent.push(['open', url]) });
      window.app = app;
    </script>"""
    async with studio_page(browser, "send_to_studio") as ui:
        page = ui.page

        async def serve(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            if url.endswith("studio_send.js"):
                await route.fulfill(body=module, content_type="text/javascript")  # type: ignore[attr-defined]
            else:
                await route.fulfill(body=page_html, content_type="text/html")  # type: ignore[attr-defined]

        await page.route(editor + "**", serve)
        await page.goto(editor)
        await page.wait_for_function("() => typeof window.send === 'function'")
        await page.evaluate("([workflow, output]) => { window.exported = { workflow, output } }", [workflow, prompt])
        result = await page.evaluate("() => window.send(false)")
        assert result["name"] == "from the editor" and result["version"] == 1
        status, body = await studio.api.get(f"/workflows/{result['id']}")
        assert body["data"]["head"]["graph"] == prompt, "the studio keeps the editor's own export"
        assert body["data"]["source_format"] == "editor"
        toasts = await page.evaluate("() => window.sent")
        assert toasts[0][0] == "success" and toasts[1] == ["open", f"/studio/workflows/{result['id']}"]
        # Sent again: a new version of the same studio workflow.
        prompt["1"]["inputs"]["width"] = 320
        await page.evaluate("([workflow, output]) => { window.exported = { workflow, output } }", [workflow, prompt])
        again = await page.evaluate("() => window.send(true)")
        assert again["id"] == result["id"] and again["version"] == 2
        status, body = await studio.api.get(f"/workflows/{result['id']}")
        assert body["data"]["head"]["graph"]["1"]["inputs"]["width"] == 320
        # Without the session's CSRF token the studio refuses the write: no route is exempted.
        status = await page.evaluate(
            """async () => (await fetch('/studio/api/v1/workflows', {method: 'POST',
                 headers: {'Content-Type': 'application/json'}, body: '{}'})).status"""
        )
        assert status == 403
        ui.expect_console_error("403 \\(Forbidden\\)")


PAGES = [
    ("workflows", "/workflows", "Workflows"),
    ("actions", "/actions", "Action slots"),
    ("shortcodes", "/shortcodes", "Shortcodes"),
    ("shortcode-editor", "/shortcodes?edit=new", "Shortcodes"),
    ("settings", "/settings", "Settings"),
]


@pytest.mark.parametrize(("theme", "width", "height"), [("dark", 1280, 860), ("light", 390, 844)])
async def test_every_page_fits_its_width_in_both_themes(
    studio: Studio, browser: object, theme: str, width: int, height: int
) -> None:
    wf = await workflow_named(studio, "stand-in generate")
    pages = [*PAGES, ("workflow", f"/workflows/{wf['id']}", "stand-in generate")]
    async with studio_page(
        browser, f"pages-{theme}-{width}", viewport={"width": width, "height": height}, color_scheme=theme
    ) as ui:
        for name, path, heading in pages:
            await goto(ui, studio.url + path, heading)
            await ui.page.wait_for_timeout(300)  # lazy sections (slots, settings) fill in
            assert await ui.page.evaluate("document.documentElement.dataset.theme") == theme
            overflow = await ui.page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow}px wider than the {width}px window"
            await ui.shot(name, full_page=True)
    assert (ARTIFACTS / f"pages-{theme}-{width}-workflows.png").is_file()
