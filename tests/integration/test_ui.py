"""The demo run in Airflow's own UI, seen through a real headless browser.

The issue's acceptance item: "the demo run's DAG and task logs are visible in the UI; the login printed by
``make run`` works". So: the launcher ``make run`` uses (via :class:`AirflowStack`) serves the project's DAGs with
the offline demo provider; the demo run is triggered through the REST API; then Chromium, driven by Playwright,
logs in with the password the launcher *printed*, opens the run the way the launcher's printed link does, and
reads ``ask_claude``'s log. A wrong password must be refused.

Playwright drives Debian's Chromium (``apt-get install chromium chromium-driver``; ``.ci/run`` installs it); it
never downloads a browser of its own. Without Chromium the tests skip and say which packages to install.
Screenshots go to a temporary folder, and also to ``$SUPERVISOR_UI_SCREENSHOTS`` when that names a folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from supervisor_lib.testing.stack import AirflowStack
from tests.conftest import DATABASES, ROOT
from tests.support.databases import fresh_database_url
from tests.support.optional import CHROMIUM, INSTALL_CHROMIUM

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_DAG = "supervisor_demo"
FIX_DAG = "payments_bugfix"
#: the UI test's Airflow runs under a non-root ``[api] base_url`` (``make run --base-path``)
BASE_PATH = "/airflow"
#: how long the browser waits for the UI to show something (the log view fetches the log after the page loads)
UI_TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: {INSTALL_CHROMIUM}"),
]


# -- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """``make run``'s launcher on a copy of the project's DAGs (and the specs they load), with no API keys."""
    base = tmp_path_factory.mktemp("ui")
    shutil.copytree(ROOT / "dags", base / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    # dags/supervisor_specs.py reads include/specs; the bug-fix demo works on include/repos/payments
    shutil.copytree(ROOT / "include", base / "include", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": fresh_database_url(DATABASES, "supervisor_it_ui", base)}
    # AirflowStack passes on no AIRFLOW*/SUPERVISOR_* variables, and conftest removed the provider keys: the
    # launcher itself must fall back to its offline demo provider, as it does for a newcomer without keys.
    # served under a path, as behind a reverse proxy: Airflow's pages and the plugin's views must work there too
    with AirflowStack(base / "dags", env=env, project_dir=ROOT, base_path=BASE_PATH) as running:
        running.wait_for_dag(DEMO_DAG)
        running.wait_for_dag(FIX_DAG)
        yield running


@pytest.fixture(scope="module")
def demo_run(stack: AirflowStack) -> str:
    run_id = stack.trigger(DEMO_DAG)
    assert stack.wait(DEMO_DAG, run_id, timeout_s=240) == "success", "".join(stack.output[-40:])
    return run_id


@pytest.fixture(scope="module")
def printed(stack: AirflowStack) -> dict[str, str]:
    """What the launcher printed: the UI address, the admin password and the demo provider's address."""
    out = "".join(stack.output)
    ui = re.search(r"Airflow UI:\s+(\S+)", out)
    login = re.search(r"Login:\s+admin / (\S+)", out)
    demo = re.search(r"anthropic\s+offline demo provider at (\S+)", out)
    assert ui and login and demo, f"the launcher's banner is missing a line:\n{out}"
    return {"ui": ui.group(1), "password": login.group(1), "demo_provider": demo.group(1)}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folders = [tmp_path_factory.mktemp("ui_screenshots")]
    if extra := os.environ.get("SUPERVISOR_UI_SCREENSHOTS"):
        folders.append(Path(extra))
        folders[-1].mkdir(parents=True, exist_ok=True)
    return folders


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, shots: list[Path], request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser session (no cookies); its last view is kept as ``<test>-last.png`` for post-mortems."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    _screenshot(opened, shots, f"{request.node.name}-last")
    context.close()


# -- helpers ------------------------------------------------------------------------------------------------------
def _screenshot(page: Page, folders: list[Path], name: str) -> None:
    data = page.screenshot(full_page=True)
    for folder in folders:
        (folder / f"{name}.png").write_bytes(data)


def _sign_in(page: Page, ui: str, password: str) -> None:
    page.goto(ui + "/")
    expect(page).to_have_url(re.compile(r"/auth/login"))  # the UI sends a stranger to the login page
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


# -- tests --------------------------------------------------------------------------------------------------------
def test_a_wrong_password_is_refused(page: Page, printed: dict[str, str], shots: list[Path]) -> None:
    _sign_in(page, printed["ui"], printed["password"] + "-wrong")
    expect(page.get_by_text("Invalid credentials")).to_be_visible()
    _screenshot(page, shots, "01-wrong-password")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.goto(printed["ui"] + f"/dags/{DEMO_DAG}")  # still no way in
    expect(page).to_have_url(re.compile(r"/auth/login"))


def test_printed_login_shows_the_demo_run_and_its_task_log(
    page: Page, stack: AirflowStack, demo_run: str, printed: dict[str, str], shots: list[Path]
) -> None:
    assert printed["ui"] == stack.base_url
    _sign_in(page, printed["ui"], printed["password"])
    expect(page).not_to_have_url(re.compile(r"/auth/login"))

    # The DAG list shows the demo DAG with its tags.
    page.goto(printed["ui"] + "/dags")
    card = page.get_by_role("link", name=DEMO_DAG, exact=True)
    expect(card).to_be_visible()
    expect(page.get_by_role("link", name="demo", exact=True).first).to_be_visible()
    _screenshot(page, shots, "02-dag-list")

    # The run, at the address the launcher prints after a demo run: green, with both tasks.
    page.goto(f"{printed['ui']}/dags/{DEMO_DAG}/runs/{demo_run}")
    expect(page.get_by_role("heading", name=demo_run)).to_be_visible()
    header = page.get_by_role("heading", name=demo_run).locator("..")
    expect(header.get_by_text("Success", exact=True)).to_be_visible()
    task_instances = page.get_by_test_id("table-list")  # the run's "Task Instances" tab
    for task_id in ("ask_claude", "ask_gpt"):
        expect(task_instances.get_by_role("link", name=task_id, exact=True)).to_be_visible()
    _screenshot(page, shots, "03-dag-run")

    # ask_claude's page opens on its log: the call to the offline demo provider and the task's end are there.
    task_instances.get_by_role("link", name="ask_claude", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/ask_claude"))
    expect(page.get_by_role("link", name="Logs", exact=True)).to_have_attribute("aria-current", "page")
    endpoint = f"{printed['demo_provider']}/v1/messages"
    expect(page.get_by_role("link", name=endpoint, exact=True)).to_be_visible()  # the log renders URLs as links
    expect(page.get_by_text("trigger completed")).to_be_visible()
    page_text = page.locator("body")
    expect(page_text).to_contain_text(f"trigger {DEMO_DAG}/{demo_run}/ask_claude/-1/1")  # the call's wait
    expect(page_text).to_contain_text(f'POST {endpoint} "HTTP/1.1 200 OK"')
    expect(page_text).to_contain_text("anthropic claude-haiku-4-5 answered (1 attempt(s)")
    _screenshot(page, shots, "04-task-log")


# -- the Supervisor plugin's views ----------------------------------------------------------------------------------
#: the views' screenshots for the README's UI tour are taken at this size (``SUPERVISOR_UI_SCREENSHOTS=docs/ui``)
TOUR_VIEWPORT = {"width": 1440, "height": 1250}
#: a call recorded by a worker shows on an open page within this long, without a reload (the issue's goal)
LIVE_WITHIN_MS = 5_000


@pytest.fixture(scope="module")
def fix_run(stack: AirflowStack, demo_run: str) -> str:
    """The supervised bug fix: ``fix_fee`` (edit, validation, review, patch) and ``review_fix``."""
    run_id = stack.trigger(FIX_DAG)
    assert stack.wait(FIX_DAG, run_id, timeout_s=300) == "success", "".join(stack.output[-40:])
    return run_id


@pytest.fixture
def tour(browser: Browser, printed: dict[str, str], shots: list[Path], request: pytest.FixtureRequest
         ) -> Iterator[tuple[Page, list[str]]]:  # fmt: skip
    """A signed-in page at the tour's size, and the browser console's errors since sign-in (a request for a
    Supervisor asset or API route outside the base path counts as one)."""
    context = browser.new_context(viewport=TOUR_VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    _sign_in(opened, printed["ui"], printed["password"])
    expect(opened).not_to_have_url(re.compile(r"/auth/login"))
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    inside = f"{printed['ui']}/supervisor/"
    opened.on("request", lambda r: errors.append(f"outside {BASE_PATH}: {r.url}")
              if "/supervisor/" in r.url and not r.url.startswith(inside) else None)  # fmt: skip
    yield opened, errors
    _screenshot(opened, shots, f"{request.node.name}-last")
    context.close()


def _shot(page: Page, folders: list[Path], name: str) -> None:
    page.wait_for_timeout(300)  # let the charts settle after their last resize
    for folder in folders:
        page.screenshot(path=str(folder / f"{name}.png"))


def _shot_of(part: Locator, folders: list[Path], name: str) -> None:
    part.scroll_into_view_if_needed()
    part.page.wait_for_timeout(300)
    for folder in folders:
        part.screenshot(path=str(folder / f"{name}.png"))


def test_the_supervisor_page_charts_the_demo_runs_and_updates_live(
    tour: tuple[Page, list[str]], stack: AirflowStack, fix_run: str, printed: dict[str, str], shots: list[Path]
) -> None:
    page, errors = tour
    numbers = stack.request("GET", "/supervisor/api/overview")
    assert numbers["calls"] >= 5 and numbers["spend_usd"] > 0  # ask_claude, ask_gpt, fix_fee x2, review_fix

    # the sidebar's "Supervisor" entry opens the page
    page.goto(printed["ui"] + "/")
    page.get_by_role("link", name="Supervisor").first.click()
    expect(page).to_have_url(f"{printed['ui']}/plugin/supervisor")
    expect(page.get_by_test_id("kpi-calls-value")).to_have_text(f"{numbers['calls']:,}")
    expect(page.get_by_test_id("kpi-spend-value")).to_have_text(re.compile(r"^\$0\.0\d+$"))
    chart = page.get_by_test_id("series")
    expect(chart.locator("canvas")).to_be_visible()
    for provider in ("anthropic", "openai"):  # one series per provider in the chart's legend
        expect(chart.locator(".u-legend").get_by_text(provider)).to_be_visible()
    expect(page.get_by_test_id("top-dags").get_by_role("link", name=FIX_DAG)).to_be_visible()
    expect(page.get_by_test_id("top-runs").get_by_role("link", name=re.compile(fix_run.replace("+", r"\+"))))\
        .to_be_visible()  # fmt: skip
    _shot(page, shots, "supervisor-overview")

    # live: a new run's calls show without a reload
    before = page.get_by_test_id("kpi-calls-value").inner_text()
    run_id = stack.trigger(DEMO_DAG)
    assert stack.wait(DEMO_DAG, run_id, timeout_s=240) == "success"
    expect(page.get_by_test_id("kpi-calls-value")).not_to_have_text(before, timeout=LIVE_WITHIN_MS)

    # drag across the chart to zoom into that stretch of time: the range becomes custom
    start = page.get_by_label("from").input_value()
    box = chart.locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    expect(page.get_by_label("from")).not_to_have_value(start)
    assert not errors, errors


def test_the_dag_run_and_task_tabs_show_the_bug_fix(
    tour: tuple[Page, list[str]], stack: AirflowStack, fix_run: str, printed: dict[str, str], shots: list[Path]
) -> None:
    page, errors = tour
    run = stack.request("GET", f"/supervisor/api/dags/{FIX_DAG}/runs/{quote(fix_run, safe='')}")
    fix_calls = [c for c in run["calls"] if c["task_id"] == "fix_fee"]
    assert len(fix_calls) >= 2 and {c["provider"] for c in fix_calls} == {"anthropic", "openai"}  # author, reviewer

    page.goto(f"{printed['ui']}/dags/{FIX_DAG}/plugin/supervisor-dag")  # the DAG's "Supervisor" tab
    expect(page.get_by_test_id("dag-tasks").get_by_text("fix_fee")).to_be_visible()
    expect(page.get_by_test_id("supervisor-chart").first.locator("canvas")).to_be_visible()
    _shot(page, shots, "supervisor-dag")

    page.goto(f"{printed['ui']}/dags/{FIX_DAG}/runs/{fix_run}/plugin/supervisor-run")
    expect(page.get_by_test_id("run-calls-value")).to_have_text(str(len(run["calls"])))
    expect(page.get_by_test_id("run-timeline").get_by_role("link", name="review_fix")).to_be_visible()
    _shot(page, shots, "supervisor-run")

    page.get_by_test_id("run-tasks").get_by_role("link", name="fix_fee").click()
    expect(page).to_have_url(re.compile(r"/tasks/fix_fee/plugin/supervisor-task$"))
    transcript = page.get_by_test_id("transcript")
    expect(transcript.get_by_test_id("attempt")).to_have_count(len(fix_calls))
    expect(transcript.locator("[data-role=system]").first).to_be_visible()  # the request as sent
    expect(transcript.locator("[data-role=assistant]").first).to_be_visible()  # and the answer
    expect(page.get_by_test_id("context")).to_contain_text("src/payments/fees.py")
    expect(page.get_by_test_id("iterations")).to_contain_text("passed")
    expect(page.get_by_test_id("review")).to_contain_text("approve")
    patch = (stack.home / "supervisor_artifacts").glob(f"{FIX_DAG}/*/fix_fee/patch.diff")
    added = next(line for line in next(patch).read_text().splitlines() if line.startswith("+") and
                 not line.startswith("+++"))  # fmt: skip
    expect(page.get_by_test_id("diff")).to_contain_text(added[1:].strip())
    _shot(page, shots, "supervisor-transcript")
    assert not errors, errors


def test_the_views_follow_the_dark_theme_and_the_home_tile_shows_spend(
    tour: tuple[Page, list[str]], fix_run: str, printed: dict[str, str], shots: list[Path]
) -> None:
    page, errors = tour
    page.goto(printed["ui"] + "/")
    tile = page.get_by_test_id("supervisor-tile")
    expect(tile.get_by_test_id("tile-spend")).to_have_text(re.compile(r"^\$0\.0\d+$"))
    _shot(page, shots, "supervisor-home-tile")

    page.goto(printed["ui"] + "/plugin/supervisor")
    card = page.get_by_test_id("kpi-spend")
    expect(card).to_be_visible()
    light = card.evaluate("element => getComputedStyle(element).backgroundColor")
    page.get_by_role("button", name="User").click()
    page.get_by_text("Appearance").click()
    page.get_by_text("Dark Mode").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    expect(card).not_to_have_css("background-color", light)
    expect(page.get_by_test_id("series").locator("canvas")).to_be_visible()  # redrawn in the dark colours
    _shot(page, shots, "supervisor-overview-dark")
    assert not errors, errors


#: an experiment's arms as a spec would declare them: (arm, model, passed per run, cost of a run in dollars)
EXPERIMENT_ARMS = (
    ("sonnet", "claude-sonnet-4-6", (1, 1, 1, 0, 1, 1, 1, 1), 0.052),
    ("haiku", "claude-haiku-4-5", (1, 0, 1, 1, 0, 1, 1, 1), 0.014),
)
#: a value with its interval as the card writes it: "83.3% [43.6%, 97.0%]"
WITH_INTERVAL = r".+ \[.+, .+\]"


def _seed_experiment(stack: AirflowStack) -> None:
    """Eight nightly runs of ``payments_bugfix.fix_fee`` in each of two arms, as the operator records them."""
    from supervisor_lib.store import Store
    from supervisor_lib.store.experiments import ArmOutcome, record_outcome

    store = Store.from_url(f"sqlite:///{stack.home / 'analytics.db'}", name="ui test")
    now = datetime.now(UTC)
    for index, (arm, model, passes, cost) in enumerate(EXPERIMENT_ARMS):
        for night, passed in enumerate(passes):
            at = now - timedelta(days=8 - night, minutes=index)
            record_outcome(store, ArmOutcome(
                experiment="fee-models", arm=arm, arm_index=index, dag_id=FIX_DAG,
                run_id=f"scheduled__{at:%Y-%m-%dT02:00:00+00:00}", task_id="fix_fee", map_index=index,
                try_number=1, task_type="bug_fix", provider="anthropic", model=model,
                status="passed" if passed else "failed", passed=bool(passed), review="approve" if passed else None,
                iterations=1 + (night + index) % 3, tokens=(16_000 if index == 0 else 19_500) + 900 * night,
                cost_usd=round(cost * (0.8 + 0.05 * night), 5), duration_s=(48.0 if index == 0 else 29.0) + night,
                recorded_at=at,
            ))  # fmt: skip
    store.close()


def test_the_experiments_card_shows_both_arms_with_intervals_and_the_verdict(
    tour: tuple[Page, list[str]], stack: AirflowStack, printed: dict[str, str], shots: list[Path]
) -> None:
    page, errors = tour
    _seed_experiment(stack)
    report = stack.request("GET", "/supervisor/api/experiments")
    assert report["experiment"] == "fee-models" and [a["arm"] for a in report["arms"]] == ["sonnet", "haiku"]
    verdict = report["comparisons"][0]["verdict"]
    assert verdict.startswith("arm haiku is cheaper by $"), verdict

    page.goto(printed["ui"] + "/plugin/supervisor")
    card = page.get_by_test_id("experiments")
    expect(card.get_by_role("heading", name="Model experiments")).to_be_visible()
    expect(card).to_contain_text(f"fee-models: 16 runs in {FIX_DAG}")
    arms = card.get_by_test_id("experiment-arms")
    for index, (arm, model, passes, _) in enumerate(EXPERIMENT_ARMS):
        cells = arms.get_by_role("row").filter(has_text=f"anthropic:{model}").get_by_role("cell")
        if index == 0:  # the arm the others are compared with says so
            expect(cells.nth(0)).to_have_text(re.compile(rf"^{arm}\s*baseline$"))
            expect(cells.nth(0).get_by_text("baseline", exact=True)).to_be_visible()
        else:
            expect(cells.nth(0)).to_have_text(arm)
        expect(cells.nth(2)).to_have_text(str(len(passes)))
        for column in range(3, 8):  # pass rate, cost, tokens, latency, iterations: each with its interval
            expect(cells.nth(column)).to_have_text(re.compile(f"^{WITH_INTERVAL}$"))
    expect(card.get_by_text("haiku vs sonnet: not enough runs")).to_be_visible()
    expect(card.get_by_test_id("experiment-verdict")).to_have_text(verdict)
    _shot_of(card, shots, "supervisor-experiments")

    page.get_by_role("button", name="User").click()  # and in the dark theme (a post-mortem screenshot only)
    page.get_by_text("Appearance").click()
    page.get_by_text("Dark Mode").click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    _shot_of(card, shots[:1], "supervisor-experiments-dark")
    assert not errors, errors


# -- anomalies and forecasts (last: the demo history changes every number on the page) ------------------------------
SCAN_DAG = "supervisor_anomaly_scan"


def test_the_scan_runs_and_a_demo_history_shows_anomalies_a_forecast_and_budgets(
    tour: tuple[Page, list[str]], stack: AirflowStack, fix_run: str, printed: dict[str, str], shots: list[Path]
) -> None:
    page, errors = tour
    # the scan DAG is unpaused from its creation and runs on the real scheduler and workers
    assert stack.api("GET", f"/dags/{SCAN_DAG}")["is_paused"] is False
    run_id = stack.trigger(SCAN_DAG)
    assert stack.wait(SCAN_DAG, run_id, timeout_s=300) == "success", "".join(stack.output[-40:])
    # the README's command seeds a month of demo calls into the store `make run` uses, and scans it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SUPERVISOR_"))}
    seeded = subprocess.run([sys.executable, "-m", "supervisor_lib.local.demo_history", "--home", str(stack.home)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert seeded.returncode == 0 and "demo calls" in seeded.stdout, seeded.stdout + seeded.stderr

    page.goto(printed["ui"] + "/plugin/supervisor")
    page.get_by_role("button", name="30 d").click()
    anomalies = page.get_by_test_id("anomalies")
    expect(anomalies.get_by_test_id("anomaly").first).to_be_visible()
    _shot(page, shots, "supervisor-overview-month")
    _shot_of(anomalies, shots, "supervisor-anomalies")
    anomalies.get_by_role("button", name=re.compile(r"^Show all \d+ groups")).click()
    for kind in ("context_blowup", "latency_spike", "runaway_output", "error_burst", "budget_runout"):
        expect(anomalies.locator(f"[data-kind={kind}]").first).to_be_visible()
    expect(anomalies.locator("[data-kind=context_blowup]").first).to_contain_text("× the median")
    expect(anomalies.locator("[data-kind=budget_runout]").first).to_contain_text("runs out around")
    link = anomalies.locator("[data-kind=context_blowup]").first.get_by_role("link").first
    expect(link).to_have_attribute("href", re.compile(r"/dags/demo_[^/]+/runs/.+/tasks/.+/plugin/supervisor-task$"))
    expect(page.get_by_test_id("series").get_by_test_id("supervisor-chart")).not_to_have_attribute("data-markers", "0")

    forecast = page.get_by_test_id("forecast")
    expect(forecast).to_contain_text("Projected by")
    expect(forecast).to_contain_text("weekday-seasonal")
    expect(forecast.get_by_test_id("supervisor-chart")).to_have_attribute("data-bands", "1")
    _shot_of(forecast, shots, "supervisor-forecast")
    budgets = page.get_by_test_id("budgets")
    expect(budgets).to_contain_text("demo_pr_review")
    expect(budgets.get_by_test_id("runs-out").first).to_be_visible()  # the month budget set to run out

    # acknowledging a group takes it off the open count, for everyone (it is stored)
    first = anomalies.get_by_test_id("anomaly").first
    first.get_by_role("button", name="Acknowledge").click()
    expect(first).to_contain_text("acknowledged by admin")

    # a finding about a DAG Airflow knows shows on that DAG's tab, listed and marked on its charts
    from supervisor_lib.analytics import findings
    from supervisor_lib.analytics.findings import Finding
    from supervisor_lib.store import Store

    store = Store.from_url(f"sqlite:///{stack.home / 'analytics.db'}", name="ui test")
    findings.record(store, [Finding(
        kind="context_blowup", subject="call:ui-test", occurred_at=datetime.now(UTC), score=3.0,
        reason="context blow-up: input 9,999 tokens, 12.0× the median (833) of 40 earlier calls of fix_fee",
        group_key="context_blowup|task:payments_bugfix.fix_fee|ui-test", dag_id=FIX_DAG, run_id=fix_run,
        task_id="fix_fee", map_index=-1, call_id="ui-test", provider="anthropic", model="claude-sonnet-4-6",
    )], datetime.now(UTC))  # fmt: skip
    store.close()
    page.goto(f"{printed['ui']}/dags/{FIX_DAG}/plugin/supervisor-dag")
    expect(page.get_by_test_id("dag-anomalies")).to_contain_text("12.0× the median (833)")
    expect(page.get_by_test_id("supervisor-chart").first).not_to_have_attribute("data-markers", "0")
    assert not errors, errors
