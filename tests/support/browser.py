"""Headless Debian Chromium driven by Playwright (never `playwright install`), for e2e tests.

The flags keep Chromium from reaching any address but the test's own (this machine's network
rule): no background networking, component updates, sync or first-run pages."""

from contextlib import contextmanager

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@contextmanager
def chromium():
    """A launched Chromium browser, closed at exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
