"""The dev console in real headless Chromium (Debian's ``chromium`` driven by Playwright, no
browser download), against ``iii-asgi run examples.todo_app:app`` plus a helper worker.

One browser for the module. Every wait is on a selector or a condition with generous
timeouts (a busy 2-core machine). The pages test runs last and writes the screenshots in
``docs/console/`` (1280×800) that docs/console.md shows.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .support import ROOT, TodoApp, chromium, eventually, todo_app

try:
    import playwright.sync_api as playwright_api
except ImportError:  # pragma: no cover - the test extras install it
    print("SKIPPED console browser tests: playwright is not installed (pip install -e '.[test]')")
    pytest.skip("playwright is not installed", allow_module_level=True)
Browser = playwright_api.Browser
Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = pytest.mark.timeout(300)
SHOTS = ROOT / "docs" / "console"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    executable, why = chromium()
    if executable is None:
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():  # printed even when output is captured
            print(f"\nSKIPPED console browser tests: {why}")
        pytest.skip(why)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app() -> Iterator[TodoApp]:
    with todo_app() as running:
        seed(running)
        yield running


def api(app: TodoApp, action: str, **form: str) -> httpx.Response:
    """A console action with the token (the way a script would use the console)."""
    return httpx.post(
        f"{app.console_url}actions/{action}",
        data=form,
        headers={"x-console-token": app.token, "accept": "application/json"},
        timeout=30,
    )


def seed(app: TodoApp) -> None:
    """Some traffic and data: todos through the engine's HTTP port, state and stream items,
    a durable publish and a message through the helper."""
    with httpx.Client(base_url=app.http_url, timeout=30) as http:
        for title in ("write the docs", "try the console", "ship it"):
            assert http.post("/todos", json={"title": title, "tags": ["demo"]}).status_code == 201
        http.patch("/todos/3", json={"done": True})
        assert http.get("/todos").status_code == 200
        assert http.get("/todos/summary").status_code == 200
        assert http.get("/todos/42").status_code == 404
    for key, value in {
        "greeting": {"hello": "world"},
        "flaky": "ok",
        "limits": {"per_minute": 60, "burst": 10},
    }.items():
        assert api(
            app, "state/set", scope="console-test", key=key, value=json.dumps(value)
        ).is_success
    api(app, "state/set", scope="settings", key="theme", value='"dark"')
    for item, data in {"alice": {"online": True}, "bob": {"online": False}}.items():
        form = {"stream": "console-stream", "group": "room-1", "item": item}
        assert api(app, "stream/set", data=json.dumps(data), **form).is_success
    publish = json.dumps({"topic": "console-orders", "data": {"order": 1}})
    assert api(app, "invoke", function_id="iii::durable::publish", payload=publish).is_success
    eventually(lambda: _state(app, "console-events", "greeting"))


def _state(app: TodoApp, scope: str, key: str) -> Any:
    """What the helper worker reads with ``state::get`` (an HTTP route of the helper)."""
    response = httpx.get(
        f"{app.http_url}/helper/state", params={"scope": scope, "key": key}, timeout=30
    )
    response.raise_for_status()
    return response.json()["value"]


class Tab:
    """A page of the console with the token cookie; collects console errors."""

    def __init__(self, page: Page, app: TodoApp) -> None:
        self.page = page
        self.app = app
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(app.login_url)  # sets the cookie, redirects to the overview
        expect(page).to_have_url(app.console_url)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def open(self, path: str) -> Page:
        response = self.page.goto(self.app.console_url + path.lstrip("/"))
        assert response is not None and response.status == 200, path
        expect(self.page.locator("#live-state")).to_have_class(re.compile(r"\bon\b"))
        return self.page

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_load_state("networkidle")
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
def tab(browser: Browser, app: TodoApp) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(WAIT_MS)
    try:
        opened = Tab(context.new_page(), app)
        yield opened
        assert opened.errors == [], opened.errors
    finally:
        context.close()


def test_invoke_a_function_from_its_page(tab: Tab) -> None:
    page = tab.open("/functions/todos::summarize")
    page.fill("#payload", json.dumps({"todos": [{"done": True}, {"done": False}]}))
    page.click("#invoke")
    result = page.locator("#result .result-json")
    expect(result).to_contain_text('"headline": "1 of 2 still open"')
    expect(page.locator("#result")).to_contain_text("trace →")

    page.fill("#payload", json.dumps({"todos": 5}))
    page.click("#invoke")
    expect(page.locator("#result .err-code")).to_be_visible()
    expect(page.locator("#result .err-message")).to_contain_text("not iterable")

    # an HTTP function: the payload starts as the request its http trigger would send
    page = tab.open("/functions/todos::create_todo")
    payload = json.loads(page.input_value("#payload"))
    assert (payload["method"], payload["path"], payload["body"]) == (
        "POST",
        "/todos",
        {"title": ""},
    )
    payload["body"] = {"title": "invoked from the console", "tags": ["console"]}
    page.fill("#payload", json.dumps(payload, indent=2))
    page.click("#invoke")
    expect(page.locator("#result .http-result")).to_contain_text("HTTP 201")
    expect(page.locator("#result .result-json")).to_contain_text(
        '"title": "invoked from the console"'
    )
    tab.shot("function")


def test_a_state_item_edited_in_the_page_is_read_back_by_a_worker(tab: Tab, app: TodoApp) -> None:
    page = tab.open("/state?scope=console-test&key=greeting")
    expect(page.locator("#state-value")).to_contain_text('"hello": "world"')
    page.fill("#state-value", json.dumps({"hello": "from the console", "n": 2}))
    page.click("#save-item")
    expect(page.locator("#state-flash .flash.ok")).to_be_visible()
    assert _state(app, "console-test", "greeting") == {"hello": "from the console", "n": 2}
    # the write went through state::set: the helper's state trigger saw it
    event = eventually(lambda: _state(app, "console-events", "greeting"))
    assert isinstance(event, dict)
    eventually(
        lambda: (
            _state(app, "console-events", "greeting")["new_value"]
            == {"hello": "from the console", "n": 2}
        )
    )
    # and the items list updated live (no reload)
    expect(page.locator("#state-items")).to_contain_text("from the console")


def test_a_dead_letter_can_be_redriven(tab: Tab, app: TodoApp) -> None:
    assert api(app, "state/set", scope="console-test", key="flaky", value='"fail"').is_success
    page = tab.open("/functions/helper::flaky")
    page.fill("#payload", json.dumps({"order": 7}))
    page.click("label:has(input[name=mode][value=enqueue])")
    page.click("#invoke")
    expect(page.locator("#result .result-json")).to_contain_text("messageReceiptId")

    page = tab.open("/queues/default")
    letter = page.locator(".letter").filter(has_text='"order": 7')
    expect(letter).to_be_visible()  # 3 attempts, 1 s then 2 s apart: arrives live
    expect(letter).to_contain_text("flaky: failing on purpose")
    tab.shot("queue")

    # fix the cause from the state page, then redrive
    page = tab.open("/state?scope=console-test&key=flaky")
    page.fill("#state-value", '"ok"')
    page.click("#save-item")
    expect(page.locator("#state-flash .flash.ok")).to_be_visible()
    page = tab.open("/queues/default")
    page.locator(".letter").filter(has_text='"order": 7').locator("[data-action=redrive]").click()
    expect(page.locator(".letter").filter(has_text='"order": 7')).to_have_count(0)
    eventually(lambda: _state(app, "console-test", "processed") == {"order": 7})


def traced_get(app: TodoApp, path: str) -> str:
    """GET ``path`` through the engine's HTTP port in a trace of our own; its trace id."""
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    httpx.get(f"{app.http_url}{path}", headers=headers, timeout=30).raise_for_status()
    return trace_id


def test_live_updates_arrive_without_a_reload(tab: Tab, app: TodoApp) -> None:
    page = tab.open("/traces")
    page.evaluate("window.__notReloaded = true")
    trace_id = traced_get(app, "/todos?limit=7")
    expect(page.locator(f"#traces-live a[href='/traces/{trace_id}']")).to_have_text("GET /todos")
    assert page.evaluate("window.__notReloaded") is True

    page = tab.open("/")
    page.evaluate("window.__notReloaded = true")
    total = page.locator("#invocations-total")
    text = total.inner_text()
    httpx.get(f"{app.http_url}/todos/1", timeout=30).raise_for_status()
    expect(total).not_to_have_text(text)
    assert page.evaluate("window.__notReloaded") is True


def test_trace_of_a_request_has_engine_and_handler_spans(tab: Tab, app: TodoApp) -> None:
    trace_id = traced_get(app, "/todos/summary")
    page = tab.open("/traces?function=todos::todo_summary")
    link = page.locator(f"#traces-live a[href='/traces/{trace_id}']")
    expect(link).to_have_text("GET /todos/summary")
    link.click()
    expect(page).to_have_url(re.compile(f"/traces/{trace_id}$"))
    rows = page.locator(".wf-row")
    engine = rows.filter(has=page.locator(".swatch.svc-engine")).filter(
        has_text="GET /todos/summary"
    )
    expect(engine.first).to_be_visible()
    expect(engine.first.locator(".span-name")).to_have_attribute("title", re.compile(r"\(engine\)"))
    handler = rows.filter(has_text="execute todos::todo_summary")
    expect(handler.first).to_be_visible()
    expect(rows.filter(has_text="execute todos::summarize").first).to_be_visible()
    tab.shot("trace")
    handler.first.locator("summary").click()
    expect(handler.first.locator(".wf-detail")).to_contain_text("iii.function.id")
    expect(handler.first.locator(".wf-detail")).to_contain_text("iii.invocation.input")
    tab.shot("trace-span")


#: Each page, what it must show, and the screenshot's name (``None``: taken elsewhere).
PAGES = [
    ("/", ".stat-value", "overview"),
    ("/functions", "a:text-is('todos::list_todos')", "functions"),
    ("/functions/todos::create_todo", "#invoke", None),
    ("/triggers", "td.path:text-is('/todos')", "triggers"),
    ("/workers", "text=console-helper", "workers"),
    ("/queues", "a:text-is('default')", "queues"),
    ("/state?scope=console-test&key=limits", "#state-value", "state"),
    ("/streams?stream=console-stream&group=room-1&item=alice", "#stream-value", "streams"),
    ("/traces", "a.trace-link:text-is('GET /todos')", "traces"),
    ("/logs", "text=read state", "logs"),
]


def test_every_page_loads_and_shows_its_items(tab: Tab) -> None:
    for path, selector, name in PAGES:
        page = tab.open(path)
        expect(page.locator(selector).first).to_be_visible()
        if name is not None:
            tab.shot(name)
    page = tab.open("/triggers")
    cron = page.locator("section", has_text="Time-based schedule")
    expect(cron.locator(".runs span").first).to_be_visible()
    for kind in ("state", "stream", "subscribe", "durable:subscriber", "console-test:webhook"):
        expect(page.locator("h2", has_text=re.compile(f"^{re.escape(kind)}$"))).to_be_visible()
    expect(page.locator("section", has_text="console-test:webhook")).to_contain_text(
        "console-helper"
    )


def test_dark_theme_and_a_narrow_window(tab: Tab) -> None:
    page = tab.open("/")
    page.click("#theme-toggle")  # system (light here) → light
    page.click("#theme-toggle")  # → dark
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    tab.shot("overview-dark")
    page = tab.open("/traces")
    page.locator("a.trace-link", has_text="GET /todos/summary").first.click()
    expect(page.locator(".wf-row").first).to_be_visible()
    tab.shot("trace-dark")
    page.set_viewport_size({"width": 420, "height": 860})
    page = tab.open("/")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width  # no sideways scrolling
    tab.shot("overview-narrow")
    page.click("#theme-toggle")  # back to system
