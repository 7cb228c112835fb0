"""Who may do what at the desk, seen from the browser: CSRF, roles, lockout, keyboard."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import STAFF, Desk, shot, sign_in, sign_in_staff

pytestmark = pytest.mark.browser


async def test_a_request_without_the_csrf_token_is_refused(browser: Browser, desk: Desk) -> None:
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    # The session cookie goes along (same origin), but not the page's token.
    answer = await page.evaluate(
        """async () => {
            const r = await fetch('/desk/api/verify', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({input: 'TB1:x', purpose: 'TB-360800-0101'})});
            return {status: r.status, body: await r.json()};
        }"""
    )
    assert answer["status"] == 403
    assert answer["body"]["code"] == "forbidden"
    # ... and with it, the same request reaches the verifier (and fails on its input only)
    with_token = await page.evaluate(
        """async () => {
            const s = await (await fetch('/desk/api/session')).json();
            const r = await fetch('/desk/api/verify', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf},
                body: JSON.stringify({input: 'not a code', purpose: 'TB-360800-0101'})});
            return {status: r.status, body: await r.json()};
        }"""
    )
    assert with_token["status"] == 400 and with_token["body"]["code"] == "validation_failed"
    await shot(page, "desk-csrf-refused")


async def test_a_staff_account_cannot_open_the_auditor_pages(browser: Browser, desk: Desk) -> None:
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await expect(page.locator("#to-audit")).to_be_hidden()
    response = await page.goto(desk.url + "/desk/audit")
    assert response is not None and response.status == 403
    await expect(page.locator("h1")).to_contain_text("无权访问")
    await shot(page, "desk-staff-forbidden")
    api = await page.evaluate("async () => (await fetch('/desk/api/audit/status')).status")
    assert api == 403


async def test_lockout_after_repeated_failures(browser: Browser, desk: Desk) -> None:
    page = await desk.page(browser)
    await page.goto(desk.url + "/desk/")
    error = page.locator("#signin-error")
    for _ in range(5):
        await page.fill("#user", STAFF[0])
        await page.fill("#password", "wrong-password")
        await page.keyboard.press("Enter")
        await expect(error).to_have_text("账号或密码错误。")
        await page.evaluate("document.getElementById('signin-error').hidden = true")
    await page.fill("#user", STAFF[0])
    await page.fill("#password", STAFF[1])  # the right password is refused while locked
    await page.keyboard.press("Enter")
    await expect(error).to_have_text("登录失败次数过多，请 15 分钟后再试。")
    await expect(page.locator("#desk")).to_be_hidden()
    await shot(page, "desk-lockout")


async def test_keyboard_only_sign_in_and_visible_focus(browser: Browser, desk: Desk) -> None:
    page = await desk.page(browser)
    await sign_in(page, desk.url, *STAFF)  # types, Tab, types, Enter: no mouse at all
    await expect(page.locator("#purpose")).to_be_focused()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focused control is visibly marked
    # every control has a label
    unlabeled = await page.evaluate(
        """() => [...document.querySelectorAll('input, select')]
              .filter(el => !el.labels || el.labels.length === 0).map(el => el.id)"""
    )
    assert unlabeled == []
    await page.keyboard.press("Tab")
    await expect(page.locator("#scan")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#file")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#verify-submit")).to_be_focused()
    await shot(page, "desk-keyboard-focus")
