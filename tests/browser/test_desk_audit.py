"""A printed usage record checked on the auditor pages, and the auditor's other tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from gateway.audit.service import CHECKPOINTER
from tests.browser.conftest import (
    AUDITOR,
    JIAN,
    SCREENSHOTS,
    Desk,
    choose_item,
    scan,
    shot,
    sign_in,
    sign_in_staff,
)
from tests.browser.licenses import DISABILITY, mint, pick

pytestmark = pytest.mark.browser


async def test_print_a_usage_record_and_check_it_on_the_auditor_page(
    browser: Browser, desk: Desk, tmp_path: Path
) -> None:
    lic = pick(desk.samples, DISABILITY, "valid")
    page = await desk.page(browser)
    await sign_in_staff(page, desk.url)
    await choose_item(page, "TB-360800-0302")
    await scan(page, mint(desk.quzhou, lic.identifier))
    await expect(page.locator("#verdict .verdict-main")).to_have_text("有效")
    receipt = page.locator("#receipt")
    await expect(receipt).to_be_visible()
    await expect(page.locator("#r-staff")).to_have_text("staff01")
    await expect(page.locator("#r-item")).to_contain_text("TB-360800-0302")
    ref = (await page.locator("#r-ref").inner_text()).replace("\n", "")
    assert ref.startswith(f"TBR1:{JIAN}:")
    seq = int(await page.locator("#r-seq").inner_text())

    # Printing shows the usage record alone (print CSS); keep the PDF for people to look at.
    await page.emulate_media(media="print")
    await expect(receipt).to_be_visible()
    await expect(page.locator(".scan")).to_be_hidden()
    await expect(page.locator("#print")).to_be_hidden()
    await shot(page, "desk-receipt-print")
    await page.pdf(path=str(SCREENSHOTS / "desk-receipt.pdf"), format="A4")
    await page.emulate_media(media="screen")

    # Saving gives the same record as a file.
    async with page.expect_download() as download_info:
        await page.click("#save")
    download = await download_info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    record = json.loads(saved.read_text())
    assert (record["ref"], record["seq"], record["staff"]) == (ref, seq, "staff01")
    assert record["verdict"] == "valid" and record["item"] == "TB-360800-0302"

    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()

    # The checkpointer signs within a second; sign now rather than wait for it.
    await desk.network.runners[JIAN].app[CHECKPOINTER].checkpoint_now()

    await sign_in(page, desk.url, *AUDITOR)
    await expect(page.locator("#not-staff")).to_be_visible()
    await page.goto(desk.url + "/desk/audit")
    await expect(page.locator("#rc-ref")).to_be_focused()  # ready for the record's QR code
    await page.keyboard.insert_text(ref)
    await page.keyboard.press("Enter")
    await expect(page.locator("#rc-verdict .verdict-main")).to_have_text("已记入审计链")
    await expect(page.locator("#rc-verdict .verdict-icon")).to_have_text("✓")
    await expect(page.locator("#rc-facts")).to_contain_text("license.verify")
    await expect(page.locator("#rc-facts")).to_contain_text("staff01")

    # A record whose leaf was altered does not check out.
    forged = ref[:-2] + ("AA" if not ref.endswith("AA") else "BA")
    await page.fill("#rc-ref", forged)
    await page.keyboard.press("Enter")
    await expect(page.locator("#rc-verdict .verdict-main")).to_have_text("核对不通过")

    # Every use of this license, through the log's pseudonym.
    await page.fill("#identifier", lic.identifier)
    await page.keyboard.press("Enter")
    row = page.locator(f'#search-rows tr[data-seq="{seq}"]')
    await expect(row).to_contain_text("license.verify")
    await expect(row).to_contain_text("staff01")
    await expect(row).to_contain_text("有效")

    # A full verification with progress.
    await page.click("#fv-start")
    await expect(page.locator("#fv-result")).to_contain_text("校验通过", timeout=20_000)
    await expect(page.locator("#fv-progress")).to_be_visible()
    await page.click("#refresh")
    await expect(page.locator("#st-note")).to_contain_text(f"tongban/{JIAN}/audit")
    await shot(page, "desk-auditor", full_page=True)
