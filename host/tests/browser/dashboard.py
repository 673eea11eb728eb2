"""The dashboard in a real headless Chromium (Debian's), driven by Playwright.

Run by host/tests/it/dashboard.rs against a running server that already
holds the tenant's logs, a disabled plugin and its dead letters:

    dashboard.py BASE_URL ADMIN_TOKEN TENANT KEY ARTIFACTS_DIR

Each step acts as a person would (typing, clicking, dragging, keys) and
checks what the page shows. Screenshots go to ARTIFACTS_DIR.
"""

import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE, ADMIN, TENANT, KEY, OUT = sys.argv[1:6]
CHROMIUM = os.environ.get("LOGGERHUB_CHROMIUM", "/usr/bin/chromium")
os.makedirs(OUT, exist_ok=True)
expect.set_options(timeout=15_000)


def call(method, path, token, body=None, content_type="application/json"):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def send(token, *records):
    call("POST", "/v1/logs", token, "\n".join(json.dumps(r) for r in records), "application/x-ndjson")


def shot(page, name):
    page.screenshot(path=os.path.join(OUT, f"{name}.png"), full_page=False)


def step(name):
    print(f"step: {name}", flush=True)


with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    # A policy violation (an inline style, another origin) is a console
    # error; an API error the page shows is the browser's note of a failed
    # load, checked on the page instead.
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}")
        if m.type == "error" and not m.text.startswith("Failed to load resource")
        else None,
    )

    step("the page, and a wrong key")
    page.goto(BASE + "/")
    expect(page.locator("h1")).to_have_text("Sign in to LoggerHub")
    page.fill("#key", "lh_not_a_key")
    page.press("#key", "Enter")
    expect(page.locator("#banner")).to_contain_text("invalid_api_key")
    shot(page, "01-sign-in-refused")

    step("sign in: the tenant's name shows, then the newest logs")
    page.fill("#key", KEY)
    page.press("#key", "Enter")
    expect(page.locator("#tenant")).to_have_text(TENANT)
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(100)
    expect(page.locator("#total")).to_contain_text("252 logs")
    first = rows.first.get_attribute("data-id")
    assert first, "rows carry their log's id"
    expect(page.locator("#histogram-svg rect.bar").first).to_be_visible()
    # What the page, its assets and its first reads weighed on the wire.
    weight = page.evaluate(
        "() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".reduce((n, e) => n + e.encodedBodySize, 0)"
    )
    assert 10_000 < weight < 300_000, f"the page weighs {weight} bytes"
    print(f"page weight: {weight} bytes", flush=True)
    shot(page, "02-logs")

    step("scrolling loads more, newest first")
    page.locator("#rows tr").last.scroll_into_view_if_needed()
    expect(rows).to_have_count(200)
    page.locator("#rows tr").last.scroll_into_view_if_needed()
    expect(rows).to_have_count(252)
    expect(page.locator("#more")).to_have_text("the end")
    stamps = page.eval_on_selector_all("#rows td.time", "cells => cells.map(c => c.title)")
    assert stamps == sorted(stamps, reverse=True), "not newest first"

    step("a search and a level filter, kept in the URL")
    page.fill("#q", '"card declined"')
    page.select_option("#level", "ERROR")
    page.press("#q", "Enter")
    expect(page).to_have_url(re.compile(r"q=%22card(\+|%20)declined%22.*level=error"))
    expect(rows).to_have_count(40)
    # The histogram counts the search's own matches.
    expect(page.locator("#histogram")).to_contain_text("40 matches")
    for text in page.locator("#rows td.message").all_inner_texts():
        assert "card declined" in text, text
    expect(page.locator("#rows .lvl").first).to_have_text("ERROR")
    color = page.eval_on_selector("#rows .lvl", "el => getComputedStyle(el).color")
    info_color = page.evaluate(
        "() => { const s = document.createElement('span'); s.className = 'lvl lvl-INFO';"
        " document.body.append(s); const c = getComputedStyle(s).color; s.remove(); return c; }"
    )
    assert color != info_color, "levels have their own colours"
    shared = page.url
    shot(page, "03-search")

    step("the search is saved under a name, and opened again from the list")
    page.click("#save")
    page.fill("#save-name", "card-errors")
    page.press("#save-name", "Enter")
    expect(page.locator("#save-note")).to_have_text("saved as card-errors")
    expect(page.locator("#saved option[value=card-errors]")).to_have_count(1)
    kept = call("GET", "/v1/saved-searches/card-errors", KEY)
    assert kept["query"] == '"card declined"' and kept["filters"] == {"level": "error", "range": "24h"}, kept
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    page.select_option("#saved", "card-errors")
    expect(page.locator("#q")).to_have_value("")
    page.click("#open-saved")
    expect(page.locator("#q")).to_have_value('"card declined"')
    expect(page.locator("#level")).to_have_value("ERROR")
    expect(rows).to_have_count(40)
    page.click("#save")
    page.fill("#save-name", "Not A Name")
    page.press("#save-name", "Enter")
    expect(page.locator("#save-note")).to_contain_text("a saved search's name is")

    step("the shared URL opens the same search")
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    page.goto(shared)
    expect(page.locator("#q")).to_have_value('"card declined"')
    expect(page.locator("#level")).to_have_value("ERROR")
    expect(rows).to_have_count(40)

    step("a malformed query is shown where it was typed, its place selected")
    page.fill("#q", 'payment AND (card OR')
    page.press("#q", "Enter")
    expect(page.locator("#q-error")).to_contain_text("a term is missing here (at character 21)")
    expect(page.locator("#q")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("() => [document.activeElement.id, document.activeElement.selectionStart]") == ["q", 20]
    expect(page.locator("#banner")).to_be_empty()
    shot(page, "04-bad-query")
    page.type("#q", " x")
    expect(page.locator("#q-error")).to_be_hidden()

    step("the facets count the search's services and levels; a click adds a term, or its NOT")
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    services = page.locator("#facets [data-facet=service] li[data-value]")
    expect(services).to_have_count(3)
    assert services.evaluate_all("lis => lis.map(li => [li.dataset.value, li.querySelector('.facet-count').textContent])") == [
        ["checkout", "85"], ["web", "84"], ["db", "83"]], "services by count"
    levels = page.locator("#facets [data-facet=level] li[data-value]")
    expect(levels).to_have_count(3)
    assert levels.evaluate_all("lis => lis.map(li => li.dataset.value)") == ["INFO", "ERROR", "WARN"]
    # The search's most common attribute (one log has one), with its values.
    attribute = page.locator('#facets [data-facet="@order_id"] li[data-value="o-77"]')
    expect(attribute).to_have_count(1)
    shot(page, "04b-facets")
    attribute.locator(".facet-pick").click()
    expect(page.locator("#q")).to_have_value('@order_id:"o-77"')
    expect(rows).to_have_count(1)
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    services.filter(has_text="db").locator(".facet-pick").click()
    expect(page.locator("#q")).to_have_value('service:"db"')
    expect(page.locator("#total")).to_contain_text("83 logs")
    expect(rows).to_have_count(83)
    page.locator("#facets [data-facet=level] li[data-value=INFO] .facet-not").click()
    expect(page.locator("#q")).to_have_value('service:"db" -level:"info"')
    expect(page.locator("#total")).to_contain_text("17 logs")
    expect(page.locator("#facets [data-facet=level] li[data-value]")).to_have_count(2)

    step("the histogram stacked by a field: its values, the rest as other or missing")
    page.goto(BASE + "/?group=service")
    expect(rows).to_have_count(100)
    expect(page.locator("#group")).to_have_value("service")
    legend = page.locator("#histogram-legend span")
    expect(legend).to_have_count(3)
    assert legend.all_inner_texts() == ["checkout", "web", "db"], legend.all_inner_texts()
    expect(page.locator("#histogram")).to_contain_text("252 logs")
    parts = set(page.eval_on_selector_all("#histogram-svg rect.bar", "rs => rs.map(r => r.dataset.part)"))
    assert parts == {"checkout", "web", "db"}, parts
    shot(page, "04c-grouped")
    page.fill("#group", "@order_id")
    page.press("#group", "Enter")
    expect(page).to_have_url(re.compile(r"group=%40order_id"))
    expect(legend).to_have_count(2)
    assert legend.all_inner_texts() == ["o-77", "no attributes.order_id"], legend.all_inner_texts()

    step("a number attribute charted per bucket: its max, in the URL")
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    page.select_option("#chart", "max")
    page.fill("#of", "@duration_ms")
    page.press("#of", "Enter")
    expect(page).to_have_url(re.compile(r"chart=max&of=%40duration_ms"))
    expect(page.locator("#histogram-legend span")).to_have_text(["max of attributes.duration_ms"])
    expect(page.locator("#histogram")).to_contain_text(
        "max of attributes.duration_ms: 89 over the range, 200 numbers in 252 logs")
    bars = page.eval_on_selector_all("#histogram-svg rect.bar title", "ts => ts.map(t => t.textContent)")
    assert bars and all("max of attributes.duration_ms" in t for t in bars), bars
    shot(page, "04d-chart")
    page.select_option("#chart", "p95")
    page.press("#of", "Enter")
    expect(page).to_have_url(re.compile(r"chart=p95"))
    expect(page.locator("#histogram")).to_contain_text("p95 of attributes.duration_ms")
    page.fill("#of", "@nope")
    page.press("#of", "Enter")
    expect(page.locator("#histogram")).to_contain_text("no numbers")

    step("the histogram narrows the range to a dragged span")
    page.goto(BASE + "/?range=6h")
    expect(rows).to_have_count(100)
    svg = page.locator("#histogram-svg")
    box = svg.bounding_box()
    # The logs span the last 50 minutes: the right end of six hours.
    page.mouse.move(box["x"] + box["width"] * 0.80, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.90, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"from=.*&to="))
    expect(page.locator("#range")).to_have_value("custom")
    expect(page.locator("#total")).to_contain_text("logs")
    # The narrowed histogram is drawn when its stats answer, after the URL
    # and the total change: wait for it (5 s), then count.
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('#histogram-svg rect.bar').length > 0",
            timeout=5000,
        )
    except Exception:
        pass
    bars_total = page.evaluate(
        "() => [...document.querySelectorAll('#histogram-svg rect.bar')].length"
    )
    assert bars_total > 0, "the narrowed histogram has bars"
    shot(page, "05-narrowed")

    step("a detail keeps the stack trace's lines, and says where it came from")
    page.goto(BASE + "/?q=Traceback")
    expect(rows).to_have_count(1)
    rows.first.click()
    expect(page.locator("#detail")).to_be_visible()
    full = page.locator("#full-log").inner_text()
    assert full.count("\n") >= 3 and 'File "app.py", line 12' in full, full
    expect(page.locator("#source")).to_have_text("from the search index")
    expect(page.locator("#attributes")).to_contain_text("order_id")
    shot(page, "06-detail")
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()

    step("a log's HTML is shown as text, never run")
    page.goto(BASE + "/?q=onerror")
    expect(rows).to_have_count(1)
    expect(page.locator("#rows td.message").first).to_contain_text("<img src=x onerror=")
    assert page.evaluate("() => window.__owned === undefined"), "a log's markup ran"
    assert page.locator("#rows img").count() == 0

    step("the keyboard alone: / to search, j/k to move, Enter to open, Escape to close")
    page.goto(BASE + "/")
    expect(rows).to_have_count(100)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "q"
    page.keyboard.type("handled")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"q=handled"))
    expect(rows).to_have_count(100)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("j")
    page.keyboard.press("j")
    focused = page.evaluate("() => document.activeElement.dataset.id")
    assert focused == rows.nth(1).get_attribute("data-id"), "j moves down the rows"
    page.keyboard.press("Enter")
    expect(page.locator("#detail")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    assert page.evaluate("() => document.activeElement.dataset.id") == focused, "focus returns to the row"
    page.keyboard.press("Tab")  # the next row, reachable by Tab
    assert page.evaluate("() => document.activeElement.tagName") == "TR"

    step("live tail: a new log appears, pause holds new ones, resume shows them")
    page.goto(BASE + "/?q=livecheck")
    page.click("#live")
    expect(page.locator("#live-note")).to_have_text("live: following")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    send(KEY, {"service": "web", "level": "WARN", "timestamp": now, "message": "livecheck one arrived"})
    send(KEY, {"service": "web", "level": "INFO", "timestamp": now, "message": "not this one"})
    expect(page.locator("#rows td.message", has_text="livecheck one arrived")).to_be_visible(timeout=20_000)
    assert page.locator("#rows td.message", has_text="not this one").count() == 0
    shot(page, "07-live")
    page.click("#pause")
    expect(page.locator("#pause")).to_have_text("Resume")
    send(KEY, {"service": "web", "level": "ERROR", "timestamp": now, "message": "livecheck two while paused"})
    expect(page.locator("#live-note")).to_contain_text("1 new while paused", timeout=20_000)
    assert page.locator("#rows td.message", has_text="livecheck two").count() == 0
    page.click("#pause")
    expect(page.locator("#rows td.message", has_text="livecheck two while paused")).to_be_visible()
    page.click("#live")
    expect(page).not_to_have_url(re.compile(r"live=1"))

    step("the plugins page: the pipeline, a disabled plugin, its figures, and a replay")
    page.click("nav a:has-text('Plugins')")
    expect(page.locator("#pipeline li")).to_have_count(5)
    expect(page.locator("#pipeline")).to_contain_text("hostile")
    hostile = page.locator("#plugins tr[data-plugin='hostile']")
    expect(hostile.locator(".status")).to_contain_text("disabled")
    cells = hostile.locator("td.num").all_inner_texts()
    calls, errors = int(cells[0].replace(",", "")), int(cells[1].replace(",", ""))
    assert errors >= 5 and calls >= errors, cells
    letters = page.locator("#dead-letters tr[data-letter]")
    expect(letters).to_have_count(5)
    expect(page.locator("#dead-letters")).to_contain_text("trap")
    shot(page, "08-plugins")
    letters.first.locator("button[data-replay]").click()
    expect(letters.first).to_contain_text("replayed")

    step("the replayed record is stored")
    deadline = time.time() + 30
    while time.time() < deadline:
        page.goto(BASE + "/?q=poison")
        try:
            expect(rows).to_have_count(1, timeout=2_000)
            break
        except AssertionError:
            time.sleep(0.5)
    expect(rows).to_have_count(1)

    step("usage against the plan")
    page.click("nav a:has-text('Usage')")
    expect(page.locator("#usage h2")).to_contain_text(f"Usage of {TENANT} on the unlimited plan")
    expect(page.locator("#usage .meter").first).to_be_visible()
    shot(page, "09-usage")

    step("a phone-width screen")
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(BASE + "/")
    phone.fill("#key", KEY)
    phone.press("#key", "Enter")
    expect(phone.locator("#rows tr")).to_have_count(100)
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    assert phone.locator("#rows td.message").first.is_visible()
    phone.screenshot(path=os.path.join(OUT, "10-phone.png"))
    phone.close()

    step("a key revoked while signed in: back to the sign-in, with the API's message")
    fresh = call("POST", f"/v1/admin/tenants/{TENANT}/keys", ADMIN, json.dumps({"scopes": ["search"]}))
    page.goto(BASE + "/")
    page.click("text=Sign out")
    page.fill("#key", fresh["key"])
    page.press("#key", "Enter")
    expect(rows).to_have_count(100)
    # The reads after the first rows (histogram, facets) are done: the
    # next search is the first to meet the revoked key.
    for facet in ("service", "level"):
        expect(page.locator(f"#facets [data-facet={facet}] li[data-value]").first).to_be_visible()
    expect(page.locator("#histogram-svg rect.bar").first).to_be_visible()
    call("DELETE", f"/v1/admin/tenants/{TENANT}/keys/{urllib.parse.quote(fresh['id'])}", ADMIN)
    page.fill("#q", "handled")
    page.press("#q", "Enter")
    expect(page.locator("h1")).to_have_text("Sign in to LoggerHub")
    expect(page.locator("#banner")).to_contain_text("invalid_api_key")
    assert page.evaluate("() => sessionStorage.getItem('loggerhub.key')") is None, "the revoked key is forgotten"
    shot(page, "11-revoked")

    assert not problems, problems
    browser.close()
    print("dashboard: every step passed", flush=True)
