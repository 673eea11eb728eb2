"""How soon the dashboard paints its first rows, in Debian's headless
Chromium (Playwright): `make read-bench` runs it against the big tenant.

    first_paint.py BASE_URL KEY SAMPLES

Each sample opens a dashboard URL in a tab already signed in (the key in
session storage) and measures, from the start of the navigation, when the
first row of results is on the page and a frame has been painted after it.
The first load of each URL fetches the page's assets; the samples after
it find them cached (they are immutable), as a returning user does.
Prints one Markdown table row per URL: p50 and p99 in ms.
"""

import os
import sys

from playwright.sync_api import sync_playwright

BASE, KEY, SAMPLES = sys.argv[1], sys.argv[2], int(sys.argv[3])
CHROMIUM = os.environ.get("LOGGERHUB_CHROMIUM", "/usr/bin/chromium")
URLS = [
    ("the newest logs", "/"),
    ("logs with level=error", "/?level=error"),
    ("a search for a common term", "/?q=orders"),
]
SIGNED_IN = f"""
sessionStorage.setItem("loggerhub.key", {KEY!r});
sessionStorage.setItem("loggerhub.tenant", "bench");
new MutationObserver((_, observer) => {{
  const row = document.querySelector("#rows tr");
  if (!row) return;
  observer.disconnect();
  requestAnimationFrame(() => setTimeout(() => {{ window.__painted = performance.now(); }}));
}}).observe(document, {{ childList: true, subtree: true }});
"""


def pct(times, q):
    times = sorted(times)
    return times[round((len(times) - 1) * q)]


with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(SIGNED_IN)
    page = context.new_page()
    for name, path in URLS:
        times = []
        for i in range(SAMPLES + 1):
            page.goto(BASE + path)
            page.wait_for_function("() => window.__painted !== undefined", timeout=30_000)
            if i > 0:  # the first load warms the cache
                times.append(page.evaluate("() => window.__painted"))
        print(f"| dashboard: {name}, first rows painted | {pct(times, 0.5):.0f} ms | {pct(times, 0.99):.0f} ms |", flush=True)
    browser.close()
