"""Hall staff at the Ji'an desk verify Quzhou e-licenses in a real browser (SPEC 4.4-4.6)."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import (
    QUZHOU,
    TABLET,
    Desk,
    choose_item,
    field_value,
    scan,
    shot,
    sign_in_staff,
)
from tests.browser.licenses import BUSINESS, DISABILITY, license_jws, mint, pick, revoke

pytestmark = pytest.mark.browser

ENTERPRISE_CHANGE = "TB-360800-0101"  # may read business licences
DISABILITY_RENEWAL = "TB-360800-0302"  # may read disability certificates only


async def test_scan_a_valid_quzhou_qr(browser: Browser, desk: Desk) -> None:
    lic = pick(desk.samples, DISABILITY, "valid")  # a person: a resident identity number
    qr = mint(desk.quzhou, lic.identifier)
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await choose_item(page, DISABILITY_RENEWAL)
    await expect(page.locator("#scan")).to_be_focused()  # ready for the scanner
    await page.keyboard.type(qr)  # a USB scanner types the text ...
    await page.keyboard.press("Enter")  # ... and Enter
    await expect(page.locator("#verdict .verdict-main")).to_have_text("有效")
    assert "verdict-valid" in str(await page.locator("#verdict").get_attribute("class"))
    await expect(page.locator("#verdict .verdict-icon")).to_have_text("✓")  # not colour alone
    await expect(page.locator("#result")).to_have_attribute("aria-live", "polite")
    holder_id = field_value(page, "holder.id")
    await expect(holder_id).to_have_text(lic.holder_id[:4] + "*" * 10 + lic.holder_id[-4:])
    assert lic.holder_id not in await page.content()  # the full number never reaches the page
    await expect(field_value(page, "holder.name")).to_have_text(lic.holder_name)
    await expect(page.locator("#issuer")).to_contain_text("衢州")
    await expect(page.locator("#status-at")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:"))
    await expect(page.locator("#reasons")).to_contain_text("全部检查通过")
    await expect(page.locator("#receipt")).to_be_visible()
    await expect(page.locator("#scan")).to_be_focused()  # the next citizen can be scanned
    await shot(page, "desk-verify-valid", full_page=True)

    await page.click("#lang")
    await expect(page.locator("#verdict .verdict-main")).to_have_text("Valid")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await shot(page, "desk-verify-valid-en", full_page=True)
    await page.reload()
    await expect(page.locator("#verify-title")).to_have_text("Verify an e-license")  # kept

    # the same QR again: it works once
    await scan(page, qr)
    await expect(page.locator("#verdict .verdict-main")).to_have_text("Invalid")
    await expect(page.locator('#reasons li[data-code="qr_replayed"]')).to_be_visible()


async def test_revoked_license(browser: Browser, desk: Desk) -> None:
    lic = pick(desk.samples, BUSINESS, "valid")
    revoke(desk.quzhou, lic.identifier, "企业已办理注销登记")
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await choose_item(page, ENTERPRISE_CHANGE)
    await scan(page, mint(desk.quzhou, lic.identifier))
    await expect(page.locator("#verdict .verdict-main")).to_have_text("无效")
    await expect(page.locator("#verdict .verdict-icon")).to_have_text("✕")
    reason = page.locator('#reasons li[data-code="revoked"]')
    await expect(reason).to_contain_text("下一步")
    await shot(page, "desk-verify-revoked", full_page=True)


async def test_expired_qr(browser: Browser, desk: Desk) -> None:
    lic = pick(desk.samples, BUSINESS, "valid")
    qr = mint(desk.quzhou, lic.identifier, minted_at=time.time() - 600)
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await choose_item(page, ENTERPRISE_CHANGE)
    await scan(page, qr)
    await expect(page.locator("#verdict .verdict-main")).to_have_text("无效")
    await expect(page.locator('#reasons li[data-code="qr_expired"]')).to_be_visible()
    await expect(page.locator("#fields")).to_contain_text("无可显示的字段")
    await shot(page, "desk-verify-qr-expired")


async def test_issuing_city_down_is_undetermined_not_revoked(browser: Browser, desk: Desk) -> None:
    lic = pick(desk.samples, BUSINESS, "valid")
    jws = license_jws(desk.quzhou, lic.identifier)
    await desk.network.stop(QUZHOU)
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await choose_item(page, ENTERPRISE_CHANGE)
    # a license file ({"license": ...} as `tongban license issue --json` writes it)
    await page.set_input_files(
        "#file",
        files=[
            {
                "name": "license.json",
                "mimeType": "application/json",
                "buffer": json.dumps({"identifier": lic.identifier, "license": jws}).encode(),
            }
        ],
    )
    await expect(page.locator("#verdict .verdict-main")).to_have_text("无法确定")
    await expect(page.locator("#verdict .verdict-icon")).to_have_text("?")
    await expect(page.locator('#reasons li[data-code="status_unknown"]')).to_be_visible()
    await expect(page.locator('#reasons li[data-code="revoked"]')).to_have_count(0)
    await expect(page.locator("#status-at")).to_have_text("未能查询")
    await shot(page, "desk-verify-issuer-down", full_page=True)


async def test_purpose_that_may_not_read_this_license(browser: Browser, desk: Desk) -> None:
    lic = pick(desk.samples, BUSINESS, "valid")
    page = await desk.page(browser, TABLET)
    await sign_in_staff(page, desk.url)
    await choose_item(page, DISABILITY_RENEWAL)
    await scan(page, mint(desk.quzhou, lic.identifier))
    await expect(page.locator("#verdict .verdict-main")).to_have_text("无效")
    await expect(page.locator('#reasons li[data-code="purpose_not_allowed"]')).to_be_visible()
    await expect(page.locator("#fields dd[data-field]")).to_have_count(0)  # nothing disclosed
    await shot(page, "desk-verify-purpose-tablet", full_page=True)


async def test_scan_without_choosing_the_service_item(browser: Browser, desk: Desk) -> None:
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await page.evaluate("localStorage.removeItem('tongban.desk.purpose')")
    await page.reload()
    await expect(page.locator("#purpose")).to_be_focused()
    await scan(page, "TB1:abc")
    await expect(page.locator("#verify-error")).to_have_text("请先选择办理事项（用证事由）。")
    await expect(page.locator("#purpose")).to_be_focused()
    await shot(page, "desk-verify-no-purpose")
