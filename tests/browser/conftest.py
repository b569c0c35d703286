"""Browser tests: Playwright for Python driving Debian's Chromium against the real stack.

Playwright never downloads a browser here: it runs ``/usr/bin/chromium``. Without it the
tests are skipped with a message in the summary; with ``OMS_REQUIRE_BROWSER=1`` (set by
``.ci/run`` once it has installed Chromium) a missing browser fails the run instead.

Playwright's sync API keeps an event loop on the main thread, which makes Django refuse
ORM calls there, so the browser lives only as long as this package's tests (package
scope) and these tests never touch the ORM: the stack has a database of its own, reached
over HTTP and, to create the users, a ``manage.py shell`` subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "blotter-pw-123"
ROOT = Path(__file__).resolve().parents[2]

_skipped: list[str] = []


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} not found (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) not installed"
    return None


def _skip_or_fail() -> None:
    problem = browser_problem()
    if problem:
        if os.environ.get("OMS_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"browser tests required (OMS_REQUIRE_BROWSER=1) but {problem}", pytrace=False
            )
        if not _skipped:
            _skipped.append(problem)
        pytest.skip(f"browser tests skipped: {problem}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture is set up (the session's stack would start first): skip or fail."""
    _skip_or_fail()


@pytest.fixture(scope="package")
def browser():
    _skip_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives every run a fresh temporary user-data-dir, removed on close.
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def web_users(browser, stack):
    """Users of the stack's database: ``web-trader`` (DEMO and HEDGE) and ``web-risk``
    (risk role, staff); returns their API tokens."""
    code = f"""
import json
from django.contrib.auth.models import Group, User
from omsweb import api_tokens
from orders.models import Account
out = {{}}
for name, role, staff in (("web-trader", "trader", False), ("web-risk", "risk", True)):
    user, _ = User.objects.get_or_create(username=name)
    user.set_password({PASSWORD!r})
    user.is_staff = staff
    user.save()
    user.groups.add(Group.objects.get(name=role))
    out[name] = api_tokens.issue(user=user, source="test")
for code in ("DEMO", "HEDGE"):
    Account.objects.get(code=code).members.add(User.objects.get(username="web-trader"))
print("TOKENS=" + json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("TOKENS="))
    return json.loads(line.removeprefix("TOKENS="))


@pytest.fixture
def new_page(browser, stack, web_users):
    """``new_page("web-trader")``: a fresh browser context logged in to the blotter."""
    contexts = []

    def make(username: str = "web-trader", *, width: int = 1440, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        login(page, stack.web, username)
        return page

    yield make
    for context in contexts:
        context.close()


def login(page, web: str, username: str, password: str = PASSWORD) -> None:
    page.goto(web + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#conn[data-state=live]")


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"BROWSER TESTS SKIPPED: {_skipped[0]} (set OMS_REQUIRE_BROWSER=1 to fail instead)",
            yellow=True,
            bold=True,
        )
