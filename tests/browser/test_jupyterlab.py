"""A notebook in JupyterLab on loopback: run it, pick a unit in the feature dashboard, see Python answer.

The fixture notebook (``fixtures/roundtrip.py``) shows a ``FeatureDashboard``
over twelve labelled units. A unit's detail is computed only in the kernel (the
dashboard's ``selected`` observer), so the detail drawn for the picked unit
proves the round trip browser -> Python -> browser; re-running the last cell then
prints what Python holds. The kernel must be connected and idle before any cell
runs: cells sent to a kernel that is still starting are the classic source of
flaky notebook tests.
"""

from __future__ import annotations

import pytest

#: The notebook panel's kernel, seen through the app that ``--LabApp.expose_app_in_browser`` exposes.
KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  const dot = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle' &&
    !!dot && dot.getAttribute('data-status') === 'idle';
}"""


def open_notebook(page, server, name: str) -> None:
    """Open ``name`` in a fresh workspace and wait until its kernel is connected and idle."""
    page.goto(f"{server.url}/lab/tree/{name}?reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
    page.wait_for_function(KERNEL_READY, timeout=90_000, polling=200)


def run_all(page) -> None:
    """Run every cell from the menu bar: Run > Run All Cells."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()


def rerun_last_cell(page) -> None:
    """Click into the last code cell and press Shift+Enter, as a user re-runs a cell."""
    page.wait_for_function(KERNEL_READY, timeout=30_000, polling=200)
    page.locator(".jp-NotebookPanel .jp-CodeCell").last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


@pytest.mark.slow
@pytest.mark.timeout(180, method="thread")
def test_feature_dashboard_round_trip_in_jupyterlab(lab_server, open_page, shot):
    from playwright.sync_api import expect

    page, watch = open_page()
    open_notebook(page, lab_server, "roundtrip.ipynb")
    run_all(page)
    dash = page.locator(".jp-OutputArea-output .interp-feature")
    detail = dash.locator("[data-role=detail]")
    expect(detail).to_have_attribute("data-unit", "0", timeout=90_000)  # anywidget rendered in the notebook
    expect(page.get_by_text("ECHO selected=0 detail=0")).to_be_visible(timeout=30_000)
    shot(page, "1-run")

    pick = dash.locator("[data-role=unit-select]")
    pick.fill("7")
    pick.dispatch_event("change")  # what typing a number and leaving the box does
    expect(detail).to_have_attribute("data-unit", "7")  # drawn from the detail Python computed
    expect(detail.locator("[data-role=score]")).to_contain_text("AUROC 0.780")
    expect(detail).to_contain_text("<plural nouns>")
    shot(page, "2-picked")

    rerun_last_cell(page)  # the kernel saw the pick
    expect(page.get_by_text("ECHO selected=7 detail=7")).to_be_visible(timeout=30_000)
    shot(page, "3-python-sees-it")
    watch.assert_clean()
