"""Playwright harness: the system Chromium against a demo network the test starts.

Nothing is downloaded: Playwright drives Debian's ``/usr/bin/chromium``. When it is
missing the test fails (never skips) with the package to install. Every test saves
screenshots under ``test-output/screenshots/`` at the repository root so a person can
look at what the desk really showed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from gateway.config import NodeConfig
from tests.browser.licenses import Sample, seed
from tests.desk.demo_accounts import cheap_demo_accounts
from tests.support.network import ROOT, Network, Tree

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}

JIAN, QUZHOU = "cn-360800", "cn-330800"
STAFF = ("staff01", "demo-staff")
AUDITOR = ("audit01", "demo-audit")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 (one stat, before any browser work)
        pytest.fail(
            "/usr/bin/chromium is missing: install the Debian package chromium "
            "(apt-get install chromium fonts-noto-cjk)",
            pytrace=False,
        )
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Desk:
    """The running demo network as the browser tests see it."""

    tree: Tree
    network: Network
    url: str
    samples: list[Sample]

    @property
    def quzhou(self) -> NodeConfig:
        return self.tree.config(QUZHOU)

    async def page(self, browser: Browser, viewport: dict[str, int] | None = None) -> Page:
        context = await browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            locale="zh-CN",
            accept_downloads=True,
        )
        page = await context.new_page()
        page.set_default_timeout(10_000)
        return page


@pytest.fixture
async def desk(network: Network, tree: Tree) -> Desk:
    """Ji'an (the hall desk) and Quzhou (an issuing city with its demo licenses)."""
    cheap_demo_accounts(tree)  # staff01 / demo-staff and audit01 / demo-audit, cheap to hash
    samples = seed(tree.config(QUZHOU))
    await network.start(QUZHOU)
    cfg = await network.start(JIAN)
    return Desk(tree=tree, network=network, url=cfg.public_url, samples=samples)


async def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot under test-output/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def sign_in(page: Page, url: str, user: str, password: str) -> None:
    """Sign in with the keyboard only: type, Tab, type, Enter."""
    await page.goto(url + "/desk/")
    await expect(page.locator("#user")).to_be_focused()
    await page.keyboard.type(user)
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    await page.keyboard.press("Enter")


async def sign_in_staff(page: Page, url: str) -> None:
    await sign_in(page, url, *STAFF)
    await expect(page.locator("#desk")).to_be_visible()


async def choose_item(page: Page, code: str) -> None:
    await page.select_option("#purpose", code)


async def scan(page: Page, text: str) -> None:
    """What a USB scanner does: type the QR text into the focused box, then Enter."""
    await page.locator("#scan").focus()
    await page.keyboard.insert_text(text)
    await page.keyboard.press("Enter")


async def verdict_of(page: Page) -> str:
    box = page.locator("#verdict")
    await expect(box).to_be_visible()
    return str(await box.get_attribute("class"))


def field_value(page: Page, name: str) -> Locator:
    return page.locator(f'#fields dd[data-field="{name}"]')
