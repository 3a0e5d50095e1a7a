"""XSS payloads in prompts, in a real Chromium on the real page: shown as text, no script runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import StudioRun
from studio_api import Api, load_workflow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
    "javascript:window.__xss=4",
    '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe>',
    "{{constructor.constructor('window.__xss=6')()}}",
]


async def test_xss_payloads_in_prompts_render_as_text(local_run: StudioRun, http, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    api = Api(http, local_run.api)
    for payload in PAYLOADS:
        status, body = await api.post("/jobs", json={"graph": load_workflow("t2i_standin"), "prompt": payload})
        assert status == 201, body
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: dialogs.append(d.message))
            await page.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.__violations.push(e.violatedDirective));"
            )
            await page.goto(local_run.url, wait_until="networkidle")
            await page.wait_for_function(
                "document.querySelector('#app') && document.querySelector('#app').children.length > 0"
            )
            # The page's own client got its session from GET /session (the loopback owner) and read the jobs.
            jobs = await page.evaluate("fetch('/studio/api/v1/jobs', {credentials: 'same-origin'}).then(r => r.json())")
            texts = [j["prompt_text"] for j in jobs["data"]["items"]]
            assert sorted(texts) == sorted(PAYLOADS)  # stored verbatim
            # Whatever the feed shows, it shows as text: none of the payloads became an element.
            shown = await page.evaluate("document.body.innerText")
            for payload in PAYLOADS:
                if payload in shown:
                    assert await page.locator("text=" + payload).count() >= 1
            assert await page.locator("img[src='x'], svg[onload], iframe[srcdoc]").count() == 0
            # Even a careless innerHTML of the same text (a v-html bug) runs nothing: the CSP has no
            # 'unsafe-inline', so inline handlers and scripts are blocked.
            await page.evaluate(
                "items => { const d = document.createElement('div'); d.id = 'careless';"
                " d.innerHTML = items.join(''); document.body.appendChild(d); }",
                texts,
            )
            await page.wait_for_timeout(300)
            assert await page.evaluate("window.__xss") is None
            assert dialogs == []
            assert any(v.startswith("script-src") for v in await page.evaluate("window.__violations"))
            await page.screenshot(path=str(tmp_path / "xss.png"))
        finally:
            await browser.close()
