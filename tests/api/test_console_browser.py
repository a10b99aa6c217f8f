"""The console in a real browser: Debian's chromium, headless, driven by Selenium through
chromedriver against the real server. Sign in with an API key, see the records waiting with
their reasons and the MRR chart, open an invoice, sign out. Each page is saved as a screenshot
(in the test's folder, and copied to ``$CONNECTOR_TEST_SCREENSHOTS`` when it is set).

Skipped when chromium or chromedriver is not installed, except under CI=true, where it fails."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector.db.engine import transaction
from connector.settings import Settings, WebhooksSettings
from connector.sync.webhooks import deliver
from tests import builders
from tests.api import console_data
from tests.api.conftest import Served
from tests.sync.test_webhooks import add
from tests.webhook_receiver import receiving

CHROMIUM = ("chromium", "chromium-browser")
SCREENSHOTS = os.environ.get("CONNECTOR_TEST_SCREENSHOTS", "")

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

LOAD_SECONDS = 30  # the most a page may take to arrive on a busy machine


def _installed() -> tuple[str, str] | None:
    browser = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    found = _installed()
    if found is None:
        why = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: under CI the browser tests must run")
        pytest.skip(why)
    binary, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


class Screenshots:
    """Full-page screenshots, numbered in the order taken."""

    def __init__(self, driver: WebDriver, folder: Path, prefix: str) -> None:
        self.driver, self.folder, self.prefix = driver, folder, prefix
        self.taken: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> Path:
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics["cssContentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path = self.folder / f"{self.prefix}-{len(self.taken) + 1:02d}-{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        self.taken.append(path)
        return path

    def share(self) -> None:
        """Copy them where people look at them (``$CONNECTOR_TEST_SCREENSHOTS``), when set and
        that place can be made."""
        if not SCREENSHOTS:
            return
        target = Path(SCREENSHOTS)
        if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
            return
        target.mkdir(exist_ok=True)
        for path in self.taken:
            shutil.copy(path, target / path.name)


def follow(browser: WebDriver, element: WebElement, url: str) -> None:
    """Click ``element`` and wait until the browser has arrived at ``url``."""
    element.click()
    WebDriverWait(browser, LOAD_SECONDS).until(expected_conditions.url_to_be(url))
    WebDriverWait(browser, LOAD_SECONDS).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
    )


@pytest.fixture
def data(factory: sessionmaker[Session], settings: Settings) -> console_data.ConsoleData:
    return console_data.build(factory, settings)


def test_sign_in_see_what_waits_the_mrr_chart_and_an_invoice(
    browser: WebDriver,
    served: Served,
    data: console_data.ConsoleData,
    tmp_path: Path,
    backend: str,
) -> None:
    key = served.key("read", name="ops laptop")
    shots = Screenshots(browser, tmp_path / "screenshots", f"console-{backend}")
    try:
        browser.get(served.url + "/waiting")
        assert browser.current_url == served.url + "/sign-in?next=%2Fwaiting"
        assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
        shots.take("sign-in")
        browser.find_element(By.ID, "key").send_keys(key)
        submit = browser.find_element(By.CSS_SELECTOR, "form button[type=submit]")

        # the page asked for, once signed in: the records waiting, with their reasons
        follow(browser, submit, served.url + "/waiting")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Records waiting"
        rows = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
        cells = [[c.text for c in row.find_elements(By.TAG_NAME, "td")] for row in rows]
        assert [(row[0], row[2]) for row in cells] == [
            ("quarantined", console_data.QUARANTINED_REASON),
            ("held", console_data.HELD_REASON),
        ]
        assert cells[0][1].splitlines()[0] == console_data.QUARANTINED_NAME  # text, not markup
        link = rows[0].find_element(By.PARTIAL_LINK_TEXT, "006000000000001AAA")
        assert link.get_attribute("href") == (
            "https://login.salesforce.com/?startURL=%2F006000000000001AAA"
        )
        shots.take("waiting")
        assert "ops laptop" in browser.find_element(By.CSS_SELECTOR, ".who").text
        assert key not in browser.page_source

        follow(browser, browser.find_element(By.LINK_TEXT, "Overview"), served.url + "/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
        stages = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
        assert [row.find_element(By.TAG_NAME, "th").text for row in stages][:3] == [
            "pull", "payments", "bill"
        ]  # fmt: skip
        shots.take("overview")

        follow(browser, browser.find_element(By.LINK_TEXT, "Outbox"), served.url + "/outbox")
        tiles = browser.find_elements(By.CSS_SELECTOR, "main .tiles .tile")
        assert [tile.text.splitlines()[:2] for tile in tiles] == [
            ["ACCOUNTING · LEDGER", str(len(data.invoices))],
            ["SALESFORCE WRITE-BACK", str(len(data.invoices) + 8)],
            ["E-MAIL", str(len(data.invoices))],
            ["PDF RENDERING", str(len(data.invoices))],
        ]
        shots.take("outbox")

        # the MRR chart: a bar per month, drawn with a height where there was revenue
        follow(browser, browser.find_element(By.LINK_TEXT, "MRR"), served.url + "/mrr")
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) == 4  # MRR and movements, in EUR and USD
        usd = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=currency-USD]")
        bars = usd.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
        assert len(bars) == 12
        heights = [bar.rect["height"] for bar in bars]
        assert heights[-1] > 0 and heights[-3] > 0  # 350.00 at the end of each of them
        assert max(heights) == heights[-6]  # 500.00 before Umbrella left
        assert bars[-1].find_element(By.TAG_NAME, "title").get_attribute("textContent") == (
            f"{data.today:%B %Y}: 350.00 USD"
        )
        usd_title = usd.find_element(By.CSS_SELECTOR, "svg.chart title")
        assert usd_title.get_attribute("textContent") == "MRR in USD by month"
        assert usd.find_elements(By.CSS_SELECTOR, "rect.churn")  # Umbrella's churn
        shots.take("mrr")

        # an invoice, from the list
        follow(browser, browser.find_element(By.LINK_TEXT, "Invoices"), served.url + "/invoices")
        assert len(browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")) == len(
            data.invoices
        )
        shots.take("invoices")
        number = data.invoices[-1]
        invoice_url = f"{served.url}/invoices/{number}"
        follow(browser, browser.find_element(By.LINK_TEXT, number), invoice_url)
        assert browser.find_element(By.TAG_NAME, "h1").text == f"Invoice {number} open"
        lines = browser.find_elements(By.CSS_SELECTOR, "main table tbody tr")
        assert [c.text for c in lines[0].find_elements(By.TAG_NAME, "td")][-3:] == [
            "5", "19%", "100.00"
        ]  # fmt: skip
        total = browser.find_element(By.CSS_SELECTOR, "tfoot tr.total").text
        assert total == "Total 119.00 EUR"
        pdf = browser.find_element(By.LINK_TEXT, "Open PDF").get_attribute("href")
        assert pdf == f"{invoice_url}/pdf"
        shots.take("invoice")

        # webhook deliveries: one refused then delivered, one delivered
        factory = served.instance.factory
        hook_settings = served.instance.settings.model_copy(
            update={"webhooks": WebhooksSettings(retry_initial_seconds=0)}
        )
        with receiving() as receiver:
            receiver.secret = add(factory, hook_settings, receiver.url)
            receiver.answers = [503]
            with transaction(factory) as session:
                builders.customer(session, "Initech")
                builders.customer(session, "Hooli")
            deliver(factory, hook_settings)
            deliver(factory, hook_settings)
        follow(browser, browser.find_element(By.LINK_TEXT, "Webhooks"), served.url + "/webhooks")
        tables_shown = browser.find_elements(By.CSS_SELECTOR, "main table")
        deliveries = tables_shown[1].find_elements(By.CSS_SELECTOR, "tbody tr")
        assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in deliveries] == [
            "delivered",
            "delivered",
        ]
        assert [row.find_elements(By.TAG_NAME, "td")[2].text for row in deliveries] == ["1", "2"]
        shots.take("webhooks")

        follow(
            browser, browser.find_element(By.CSS_SELECTOR, ".who button"), served.url + "/sign-in"
        )
        browser.get(served.url + "/")
        assert browser.current_url == served.url + "/sign-in"
    finally:
        shots.share()
    assert [path.name for path in shots.taken] == [
        f"console-{backend}-0{n}-{name}.png"
        for n, name in enumerate(
            (
                "sign-in",
                "waiting",
                "overview",
                "outbox",
                "mrr",
                "invoices",
                "invoice",
                "webhooks",
            ),
            1,
        )
    ]
