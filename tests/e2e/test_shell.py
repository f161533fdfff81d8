"""In real Chromium: logging in through the form, the navigation, keyboard shortcuts and the switch to Chinese."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_PASSWORD, PASSWORD, log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_login_navigation_shortcuts_and_chinese(page, live_server):
    page.goto("/runs")
    expect(page).to_have_url(f"{live_server.url}/login?next=/runs")
    shot(page, "login-en")
    page.fill('input[name="username"]', "admin")
    page.fill('input[name="password"]', "wrong")
    page.click('button[type="submit"]')
    expect(page.locator(".flash.error")).to_have_text("Wrong username or password.")
    page.fill('input[name="password"]', ADMIN_PASSWORD)
    page.click('button[type="submit"]')
    expect(page).to_have_url(f"{live_server.url}/runs")
    nav = page.locator("header nav")
    expect(nav.get_by_role("link", name="Datasets")).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_be_visible()  # admin only

    # Keyboard: "?" lists the shortcuts, "g c" goes to Compare.
    page.keyboard.press("?")
    expect(page.locator("dialog#keys")).to_be_visible()
    shot(page, "shortcuts-en")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#keys")).to_be_hidden()
    page.keyboard.press("g")
    page.keyboard.press("c")
    expect(page).to_have_url(f"{live_server.url}/compare")

    # Switch to Chinese: the whole shell follows.
    page.click("button.lang-switch")
    expect(page).to_have_url(f"{live_server.url}/compare")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(nav.get_by_role("link", name="数据集")).to_be_visible()
    expect(page.locator("h1")).to_have_text("对比")
    expect(page.locator("header").get_by_role("button", name="退出")).to_be_visible()
    shot(page, "placeholder-zh")
    page.goto("/users")
    expect(page.get_by_text("新建用户")).to_be_visible()
    shot(page, "users-zh")
    page.locator("header").get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.locator("h1")).to_have_text("登录")
    shot(page, "login-zh")


def test_admin_creates_a_user_who_then_makes_an_api_token(browser, page, live_server):
    log_in(page, "admin", ADMIN_PASSWORD, "/users")
    page.fill('#new-user input[name="username"]', "lihua")
    page.fill('#new-user input[name="password"]', PASSWORD)
    page.select_option('#new-user select[name="role"]', "researcher")
    page.click("#new-user button.primary")
    expect(page.locator(".flash")).to_have_text("User created.")
    expect(page.locator('tr[data-user="lihua"]')).to_be_visible()
    shot(page, "users-en")

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 860})
    other = context.new_page()
    try:
        log_in(other, "lihua", PASSWORD, "/tokens")
        expect(other.locator("header nav").get_by_role("link", name="Users")).to_have_count(0)
        other.fill('input[name="name"]', "laptop")
        other.click("form.toolbar button.primary")
        token = other.locator("#new-token").inner_text()
        assert token.startswith("sft_")
        shot(other, "tokens-en")
        # The token works for a script, with no cookie.
        response = other.request.get(
            f"{live_server.url}/api/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.ok and response.json()["username"] == "lihua"
        other.once("dialog", lambda d: d.accept())
        other.click('form[action$="/revoke"] button')
        expect(other.locator(".flash")).to_have_text("Token revoked.")
        again = other.request.get(f"{live_server.url}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert again.status == 401
        # A researcher opening an admin page sees a clear refusal, still inside the shell.
        other.goto("/users")
        expect(other.locator(".flash.error")).to_have_text("This needs the admin role.")
        # Changing one's own password in the browser keeps this login.
        other.goto("/account")
        other.fill('input[name="current_password"]', PASSWORD)
        other.fill('input[name="new_password"]', PASSWORD + "2")
        other.click("form.stack button.primary")
        expect(other.locator(".flash")).to_have_text("Password changed; other sessions have ended.")
        shot(other, "account-en")
        other.goto("/tokens")
        expect(other.locator("h1")).to_have_text("API tokens")
    finally:
        context.close()
