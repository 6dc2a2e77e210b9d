"""The console in a real browser: Playwright drives Debian's Chromium against a live
server with real Celery workers. One operator journey (log in, create a template, see
its live preview, publish it, send a test to oneself, follow the task, read the
dashboard, switch to Chinese) and a Viewer's read-only look. Screenshots of the main
pages land in docs/screenshots/ (shown in the README)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from channels_app import rollup
from channels_app.models import DeliveryRecord, DeliveryState
from tasks_app.models import MessageTask, TaskState
from templates_app.models import MessageTemplate, TemplateStatus
from tests.console_fixtures import ensure_console_groups
from tests.servers import wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "console-pw-1"


@pytest.fixture
def console_groups(db):
    ensure_console_groups()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module. Playwright's sync API keeps an event loop in this
    thread, which Django's async-safety check would take for async code."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page_for(browser, live_server):
    """page_for(user) -> a logged-in page (through the login form) in its own context."""
    contexts = []

    def login(user: User):
        context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}{reverse('admin:login')}?next={reverse('admin:index')}")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + reverse("admin:index"))
        return page

    yield login
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def run_dialog_action(page, title: str, submit: str) -> None:
    """Click a lifecycle button and confirm its unfold dialog."""
    page.get_by_role("link", name=title).first.click()
    dialog = page.locator("#dialog")
    dialog.wait_for()
    with page.expect_navigation():
        dialog.get_by_role("button", name=submit).click()


def test_operator_journey_from_template_to_dashboard(
    page_for, live_server, workers, console_groups, settings
):
    settings.MSGCENTER_DASHBOARD_CACHE_SECONDS = 0
    admin = User.objects.create_superuser("ops", "ops@example.com", PASSWORD, first_name="Olga")
    page = page_for(admin)

    # Create a template with an in-app content.
    page.goto(live_server.url + reverse("admin:templates_app_messagetemplate_add"))
    page.fill("input[name=code]", "parcel_shipped")
    page.fill("input[name=name]", "Parcel shipped")
    page.fill("textarea[name=sample_params]", '{"order_no": "A-42"}')
    page.get_by_role("link", name="Contents").first.click()
    page.select_option("select[name=contents-0-channel]", "inapp")
    page.fill(
        "input[name=contents-0-subject], textarea[name=contents-0-subject]", "Parcel {{ order_no }}"
    )
    page.fill(
        "textarea[name=contents-0-body]",
        "Hello {{ recipient.name }}, parcel {{ order_no }} is on its way.",
    )
    # The live preview renders the unsaved form as it is typed.
    preview = page.locator("#live-preview")
    preview.get_by_text("Hello Olga, parcel A-42 is on its way.").wait_for()
    page.fill(
        "textarea[name=contents-0-body]",
        "Hello {{ recipient.name }}, parcel {{ order_no }} {% if %}",
    )
    preview.locator("[data-preview-error]").wait_for()
    page.fill(
        "textarea[name=contents-0-body]",
        "Hello {{ recipient.name }}, parcel {{ order_no }} is on its way.",
    )
    preview.get_by_text("Hello Olga, parcel A-42 is on its way.").wait_for()
    with page.expect_navigation():
        page.click("button[name=_continue]")
    template = MessageTemplate.objects.get(code="parcel_shipped")
    assert template.contents.get().channel == "inapp"
    page.get_by_text("Preview with the sample params").first.scroll_into_view_if_needed()
    shot(page, "template")

    # Publish, then send a test to ourselves; the test lands on the task page.
    run_dialog_action(page, "Publish", "Publish")
    page.get_by_text("Published version 1.").wait_for()
    template.refresh_from_db()
    assert template.status == TemplateStatus.PUBLISHED and template.version == 1
    run_dialog_action(page, "Send a test to me", "Send test")
    task = MessageTask.objects.get(template=template)
    assert f"/tasks_app/messagetask/{task.pk}/" in page.url

    # The worker sends it; the task page shows the path taken and the timeline.
    wait_for(
        lambda: MessageTask.objects.get(pk=task.pk).state == TaskState.COMPLETED,
        timeout=30,
        message="the test message to be sent",
    )
    delivery = DeliveryRecord.objects.get(task=task)
    assert delivery.state in (DeliveryState.SENT, DeliveryState.DELIVERED)
    assert delivery.content["body"] == "Hello Olga, parcel A-42 is on its way."
    page.reload()
    diagram = page.locator("svg[data-diagram]")
    assert diagram.locator("g[data-current]").get_attribute("data-state") == "completed"
    taken = diagram.locator("line[data-taken]").evaluate_all(
        "lines => lines.map(l => l.dataset.edge)"
    )
    assert taken == ["initialized-tasked", "tasked-pushing", "pushing-completed"] or sorted(
        taken
    ) == sorted(["initialized-tasked", "tasked-pushing", "pushing-completed"])
    events = page.locator("[data-timeline] li[data-event]")
    assert events.count() == 3
    assert events.nth(2).get_attribute("data-event") == "completed"
    shot(page, "task")

    # The dashboard draws its charts with the data (plus a day of synthetic traffic).
    call_command("seed_deliveries", 3000, "--days", "1", "--seed", "5")
    rollup.refresh()
    page.goto(live_server.url + reverse("admin:index") + "?period=24h")
    page.wait_for_function(
        "document.querySelectorAll('canvas.chart').length === 3 && "
        "[...document.querySelectorAll('canvas.chart')]"
        ".every(c => Chart.getChart(c))"
    )
    sums = page.evaluate("""[...document.querySelectorAll('canvas.chart')].map(c => {
        const chart = Chart.getChart(c);
        return {type: chart.config.type, datasets: chart.data.datasets.length,
                total: chart.data.datasets.flatMap(d => d.data).reduce((a, b) => a + b, 0)};
    })""")
    assert all(s["type"] == "bar" and s["datasets"] >= 1 and s["total"] > 0 for s in sums), sums
    over_time = page.evaluate(
        "Chart.getChart(document.querySelector("
        "'[data-chart=over-time] canvas')).data.datasets[0].label"
    )
    assert over_time == "dingtalk"  # datasets are the channels, in order
    assert page.locator("[data-kpi=total]").inner_text() == str(DeliveryRecord.objects.count())
    shot(page, "dashboard")

    # A failed delivery shows every attempt with its error.
    failed = DeliveryRecord.objects.filter(state=DeliveryState.FAILED).first()
    page.goto(
        live_server.url + reverse("admin:channels_app_deliveryrecord_change", args=[failed.pk])
    )
    attempts = page.locator("[data-attempts] tr[data-attempt]")
    assert attempts.count() == 2
    assert failed.error in attempts.nth(1).inner_text()
    attempts.first.scroll_into_view_if_needed()
    shot(page, "delivery-attempts")
    page.goto(live_server.url + reverse("admin:index") + "?period=24h")

    # Switch to Simplified Chinese from the user menu.
    page.locator("form:has(input[name=language][value=zh-hans]) button").dispatch_event("click")
    page.wait_for_load_state()
    page.get_by_text("各渠道投递量").wait_for()
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert "成功率" in page.inner_text("[data-kpis]")
    shot(page, "dashboard-zh-hans")
    page.goto(live_server.url + reverse("admin:tasks_app_messagetask_change", args=[task.pk]))
    assert page.locator("svg[data-diagram] g[data-state=completed] text").text_content() == "已完成"
    assert "生命周期与时间线" in page.content()


def test_viewer_sees_no_edit_buttons(page_for, live_server, console_groups):
    from tests import factories

    template = factories.published_template(channels=("inapp",))
    factories.recipients(1)
    from tasks_app.services import send_message

    task, _ = send_message(
        client=None, template=template.code, recipients=["u-1001"], params={"order_no": "V1"}
    )
    viewer = User.objects.create_user("vera", "vera@example.com", PASSWORD, is_staff=True)
    viewer.groups.add(Group.objects.get(name="Viewer"))
    page = page_for(viewer)
    page.goto(
        live_server.url + reverse("admin:templates_app_messagetemplate_change", args=[template.pk])
    )
    page.get_by_text("Order {{ order_no }} shipped").first.wait_for(state="attached")
    for label in ("Publish", "Archive", "Send a test to me"):
        assert page.get_by_role("link", name=label).count() == 0
    assert page.locator("button[name=_save], button[name=_continue]").count() == 0
    page.goto(live_server.url + reverse("admin:tasks_app_messagetask_change", args=[task.pk]))
    page.locator("svg[data-diagram]").wait_for()
    for label in ("Cancel task", "Retry failed deliveries", "Release deferred now"):
        assert page.get_by_role("link", name=label).count() == 0
    page.goto(live_server.url + reverse("admin:templates_app_messagetemplate_changelist"))
    assert page.get_by_role("link", name="Add").count() == 0
    shot(page, "viewer-templates")
