"""Every page works without internet: nothing a page loads leaves 127.0.0.1 (issue 12,
item 9: /api/docs/ loaded Swagger UI from a CDN and rendered blank offline).

The browser records every request of every page (the blotter, its login, the admin's
index, each list and a detail page, the API docs and the schema) and refuses any that
leaves the machine, as a machine without internet would; the docs page must still
render its operations.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import PASSWORD, ROOT, login

pytestmark = [pytest.mark.browser, pytest.mark.system]

LOCAL_HOSTS = {"127.0.0.1"}
LOCAL_SCHEMES = {"data", "blob", "about"}


@pytest.fixture(scope="package")
def web_admin(browser, stack):
    """A superuser of the stack's database: ``web-admin``."""
    code = f"""
from django.contrib.auth.models import User
user, _ = User.objects.get_or_create(username="web-admin")
user.set_password({PASSWORD!r})
user.is_staff = user.is_superuser = True
user.save()
"""
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return "web-admin"


def _leaves(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS


@pytest.fixture
def offline_context(browser):
    """A browser context that records every request and refuses those leaving
    127.0.0.1 (``context.outside``)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    outside: list[str] = []

    def guard(route):
        if _leaves(route.request.url):
            outside.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", guard)
    context.outside = outside
    yield context
    context.close()


def _admin_pages(page, web: str) -> list[str]:
    """The admin's index, every list linked from it, and the first row of each list."""
    page.goto(web + "/admin/")
    lists = sorted(
        set(page.eval_on_selector_all("#content-main a[href$='/']", "els => els.map(e => e.href)"))
    )
    lists = [u for u in lists if u.startswith(web + "/admin/") and not u.endswith("/add/")]
    pages = [web + "/admin/", *lists]
    for url in lists:
        page.goto(url)
        first = page.query_selector("#result_list tbody tr th a")
        if first is not None:
            pages.append(web + first.get_attribute("href"))
    return pages


def test_every_page_then_no_request_leaves_the_machine(
    offline_context, stack, web_users, web_admin
):
    # Arrange: the blotter as a trader, then the admin and the API docs as an admin
    page = offline_context.new_page()
    login(page, stack.web, "web-trader")  # the login page, then the blotter, live
    offline_context.clear_cookies()
    page.goto(stack.web + "/admin/login/")
    page.fill("input[name=username]", web_admin)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    visited = [stack.web + "/", stack.web + "/login/"]
    # Act
    for url in _admin_pages(page, stack.web):
        r = page.goto(url)
        assert r is not None and r.status == 200, (url, r and r.status)
        visited.append(url)
    # the schema is a download for a browser: fetched with the page's session
    schema = page.request.get(stack.web + "/api/schema/")
    assert schema.status == 200 and b"/api/v1/orders/" in schema.body()
    page.goto(stack.web + "/api/docs/")
    # Swagger UI rendered its operations from files the project serves
    rendered = page.locator(".swagger-ui .opblock").first
    if not offline_context.outside:  # else it cannot render: say what was refused
        rendered.wait_for(timeout=20_000)
    assert rendered.is_visible(), f"blank docs page; refused: {offline_context.outside}"
    visited += [stack.web + "/api/schema/", stack.web + "/api/docs/"]
    # Assert
    assert offline_context.outside == [], (
        f"requests leaving 127.0.0.1: {sorted(set(offline_context.outside))}"
    )
    assert len(visited) > 10, visited
