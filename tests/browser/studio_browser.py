"""What the browser suite shares: Debian's Chromium, a studio on the test host, a watched page, screenshots.

Each test gets a fresh studio (stand-in workflows in every action slot, so jobs run without a model)
and a fresh browser context on a browser shared by its module. The page records console errors,
uncaught exceptions and CSP violations; `StudioPage.assert_clean()` fails on any that were not expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from harness import StudioRun, start_studio
from studio_api import Api
from test_actions_api import use_standins
from test_api_jobs import wait_for_state

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"

# Without Chromium the suite skips, except in CI, where a missing browser is a failure.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="needs Debian's Chromium at /usr/bin/chromium"
)

# Runs before any of the page's own scripts, in every document of the context (reloads included).
WATCH_SCRIPT = """
document.addEventListener('securitypolicyviolation', (e) =>
  window.__studioViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
window.__themes = [];
new MutationObserver((records) => {
  for (const r of records) if (r.target === document.documentElement && r.attributeName === 'data-theme')
    window.__themes.push({ theme: document.documentElement.getAttribute('data-theme'), body: !!document.body });
}).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-theme'] });
document.addEventListener('DOMContentLoaded', () => {
  window.__themeAtDomContentLoaded = document.documentElement.dataset.theme;
});
"""

# Every change of a job row's state and of the job's toasts, as the DOM showed them.
TRACK_SCRIPT = """
(() => {
  const seen = (window.__jobStates = {});
  const toasts = (window.__jobToasts = {});
  const look = () => {
    for (const row of document.querySelectorAll('[data-job-id]')) {
      const list = (seen[row.dataset.jobId] ??= []);
      const status = row.querySelector('.tile.placeholder[role=status]');
      const now = row.dataset.state + (status ? ' | ' + status.getAttribute('aria-label') : '');
      if (list[list.length - 1] !== now) list.push(now);
    }
    const counts = {};
    for (const t of document.querySelectorAll('[aria-label=Notifications] li[data-job]')) {
      counts[t.dataset.job] = (counts[t.dataset.job] ?? 0) + 1;
      const title = t.querySelector('.title').firstChild.textContent.trim();
      const list = (toasts[t.dataset.job] ??= { max: 0, titles: [] });
      if (list.titles[list.titles.length - 1] !== title) list.titles.push(title);
    }
    for (const [id, n] of Object.entries(counts)) toasts[id].max = Math.max(toasts[id].max, n);
  };
  new MutationObserver(look)
    .observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  look();
})()
"""


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Studio:
    run: StudioRun
    api: Api

    @property
    def url(self) -> str:
        return self.run.url

    async def generate(self, text: str) -> dict:
        """Submit a prompt as the prompt bar does and wait until its job is done."""
        status, body = await self.api.post("/generate", json={"text": text})
        assert status == 201, body
        job = await wait_for_state(self.api, body["data"]["id"], {"done", "error", "rejected"}, timeout=20)
        assert job["state"] == "done", job
        return job

    async def job(self, job_id: str) -> dict:
        status, body = await self.api.get(f"/jobs/{job_id}")
        assert status == 200, body
        return body["data"]


@asynccontextmanager
async def studio_on_test_host(base: Path, *, node_delay: float = 0.3) -> AsyncIterator[Studio]:
    run = await start_studio(base, node_delay=node_delay)
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, run.api)
            await use_standins(api)
            yield Studio(run, api)
    finally:
        await run.stop()


@dataclass
class StudioPage:
    """A page of the studio, watched for console errors and CSP violations, that saves its screenshots."""

    page: object
    test: str
    console_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    expected_errors: list[re.Pattern[str]] = field(default_factory=list)

    async def shot(self, step: str, *, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{self.test}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="initial")
        return path

    def expect_console_error(self, pattern: str) -> None:
        """An error the scenario provokes on purpose (e.g. Chromium logging a refused request)."""
        self.expected_errors.append(re.compile(pattern))

    def assert_clean(self) -> None:
        unexpected = [e for e in self.console_errors if not any(p.search(e) for p in self.expected_errors)]
        assert unexpected == [], f"console errors: {unexpected}"
        assert self.violations == [], f"CSP violations: {self.violations}"

    async def open(self, url: str) -> None:
        await self.page.goto(url, wait_until="domcontentloaded")
        await self.ready()

    async def ready(self) -> None:
        """The app is mounted, its live stream is up and the first page of jobs is read."""
        await self.page.get_by_role("combobox").wait_for()
        await self.page.wait_for_function(
            "() => document.querySelector('[role=feed]') && !document.querySelector('.foot .spinner')"
        )
        await self.page.evaluate(TRACK_SCRIPT)

    async def job_states(self, job_id: str) -> list[str]:
        return await self.page.evaluate("id => window.__jobStates[id] ?? []", job_id)

    async def job_toasts(self, job_id: str) -> dict:
        return await self.page.evaluate("id => window.__jobToasts[id] ?? {max: 0, titles: []}", job_id)


def short_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"^test_", "", request.node.name)


@asynccontextmanager
async def studio_page(browser: object, test: str, **context_options: object) -> AsyncIterator[StudioPage]:
    """A new context and page; on the way out, the page must have logged no errors and no CSP violations."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    options = {"viewport": {"width": 1280, "height": 860}, "color_scheme": "dark", **context_options}
    context = await browser.new_context(**options)  # type: ignore[attr-defined]
    try:
        context.set_default_timeout(10_000)
        page = await context.new_page()
        watched = StudioPage(page, test)
        await context.expose_function("__studioViolation", lambda v: watched.violations.append(v))
        await context.add_init_script(WATCH_SCRIPT)
        page.on("console", lambda m: watched.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watched.console_errors.append(f"uncaught: {e}"))
        yield watched
        await page.wait_for_timeout(100)  # late violations and errors still get reported
        watched.assert_clean()
    finally:
        await context.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
