"""The round-trip fixture notebook as a Voilà page: it renders, and picking a unit makes Python answer.

Voilà runs the notebook on page load and keeps its kernel for the page, so the
dashboard's ``selected`` observer still runs in Python: the detail drawn for the
picked unit (computed only in the kernel) proves the round trip.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.timeout(150, method="thread")
def test_feature_dashboard_round_trip_in_voila(voila_server, open_page, shot):
    from playwright.sync_api import expect

    page, watch = open_page()
    page.goto(voila_server.url)
    detail = page.locator(".interp-feature [data-role=detail]")
    expect(detail).to_have_attribute("data-unit", "0", timeout=90_000)
    expect(page.get_by_text("ECHO selected=0 detail=0")).to_be_visible()
    shot(page, "1-rendered")

    pick = page.locator(".interp-feature [data-role=unit-select]")
    pick.fill("9")
    pick.dispatch_event("change")
    expect(detail).to_have_attribute("data-unit", "9")
    expect(detail.locator("[data-role=score]")).to_contain_text("AUROC 0.860")
    page.locator(".interp-feature [data-role=next]").click()  # the next-unit button goes through Python too
    expect(detail).to_have_attribute("data-unit", "10")
    shot(page, "2-picked")

    # The shipped interp-offline template drops the stock template's CDN stylesheets: nothing leaves loopback.
    assert not watch.blocked, f"the Voilà page tried to reach beyond loopback: {watch.blocked}"
    watch.assert_clean()
