"""Widgets shared by the pages: the page guard, period and unit pickers, the reason gate, tables."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard import audit, i18n, queries
from dashboard.auth import UserContext
from dashboard.i18n import t
from etl import periods
from etl.errors import EtlError
from etl.vocabulary import PERIOD_KIND_NAMES as PERIOD_KINDS
from etl.warehouse.db import warehouse_url


def url() -> str:
    return warehouse_url()


def page_context(page_id: str, title: str) -> UserContext:
    """The logged-in user if their role may open ``page_id``; otherwise stop the page (checked again here)."""
    ctx = st.session_state.get("_ctx")
    if not isinstance(ctx, UserContext) or not ctx.may_open(page_id):
        st.error(t("无权访问本页面"))
        st.stop()
    st.title(t(title))
    flashed = st.session_state.pop("_flash", None)  # the outcome of a write made on the previous run
    if flashed:
        st.success(flashed)
        st.toast(flashed, icon=":material/check_circle:")  # seen too when the page stays scrolled to its form
    return ctx


def scoped_page(page_id: str, title: str) -> tuple[UserContext, str, str, str]:
    """The common head of a scoped page: role check, title, period and unit pickers.

    Returns (user context, warehouse URL, period, unit code); stops the page when there is no data to pick.
    """
    ctx = page_context(page_id, title)
    period = period_picker()
    unit = unit_picker(ctx)
    if period is None or unit is None:
        st.stop()
    return ctx, url(), period, unit


def period_picker(key: str = "period") -> str | None:
    """Period type and period (newest first) from the periods present in the warehouse."""
    avail = queries.available_periods(url())
    kinds = [k for k in ("month", "quarter", "year") if avail.get(k)]
    if not kinds:
        st.info(t("无数据"))
        return None
    c1, c2 = st.columns([1, 2])
    kind = c1.radio(t("期间类型"), kinds, format_func=lambda k: t(PERIOD_KINDS[k]), horizontal=True, key=f"{key}_kind")
    return c2.selectbox(
        t("期间"), avail[kind], format_func=lambda p: periods.label(p, i18n.lang()), key=f"{key}_{kind}"
    )


def unit_picker(ctx: UserContext, key: str = "unit", container=None) -> str | None:  # noqa: ANN001
    """A unit within the user's scope (default: the top of the scope). Only in-scope units are offered;
    a ``?unit=`` query parameter preselects one of them and is ignored otherwise."""
    box = container or st
    opts = queries.units(url(), ctx.scope)
    if opts.empty:
        box.warning(t("无数据"))
        return None
    codes = list(opts["unit_code"].astype(str))
    names = dict(zip(codes, opts["name"].astype(str), strict=True))
    root = queries.scope_root(url(), ctx.scope)
    wanted = st.query_params.get("unit")
    default = wanted if wanted in codes else (root if root in codes else codes[0])
    return box.selectbox(t("单位"), codes, index=codes.index(default), format_func=lambda c: names.get(c, c), key=key)


def reason_gate(
    ctx: UserContext, page: str, action: str, obj: str, key: str, prompt: str = "查看详情须填写事由（将记入系统日志）"
) -> str | None:
    """Ask for a reason (事由) before a detail view or an export; record it in the audit log once.

    Returns the reason when given (in this session, for this object), else None.
    """
    given: dict = st.session_state.setdefault("_reasons", {})
    k = f"{page}|{action}|{obj}"
    if k in given:
        return given[k]
    slot = st.empty()  # the form goes away once the reason is given
    with slot.form(key=f"reason_form_{key}"):
        st.caption(t(prompt))
        reason = st.text_input(t("事由"), key=f"reason_text_{key}", max_chars=200)
        submitted = st.form_submit_button(t("确认"))
    if not submitted:
        return None
    if not reason or not reason.strip():
        st.warning(t("请填写事由"))
        return None
    try:
        audit.record(queries.engine(url()), ctx, page, action, obj, reason.strip())
    except EtlError as exc:  # never show or export what the audit log did not record
        st.error(str(exc))
        return None
    given[k] = reason.strip()
    slot.empty()
    return given[k]


def table(df: pd.DataFrame, names: dict[str, str] | None = None, height: int | None = None) -> None:
    """A data frame as text cells (never HTML), with unit names and user-facing headers; findings with their
    review and appeal state in words (an exempted finding reads 已豁免 on every page that lists it)."""
    from dashboard.logic import label_codes, review_view

    shown = label_codes(df, names) if names is not None else df
    if "review_state" in shown.columns or "appeal_state" in shown.columns:
        shown = review_view(shown)
    if len(shown) >= queries.ROW_LIMIT:
        st.caption(f"{t('最多显示')} {queries.ROW_LIMIT} {t('行')}")
    kwargs = {"height": height} if height else {}
    st.dataframe(i18n.headers(shown), hide_index=True, width="stretch", **kwargs)


def error_id(exc: BaseException, where: str) -> str:
    """Log ``exc`` with its details; the short id to show the user instead (``dashboard.security.log_error``)."""
    from dashboard.security import log_error

    return log_error(exc, where)


def chart(fig) -> None:  # noqa: ANN001
    st.plotly_chart(fig, width="stretch", config={"displaylogo": False})


def write(
    reason: str | None,
    action: Callable[[str], object],
    done: str,
    missing: str | None = None,
    describe: Callable[[object], str] | None = None,
    empty: str = "请填写事由",
) -> bool:
    """Run one supervision write once its reason (事由) is given, and show the outcome.

    An empty reason: ``empty`` (请填写事由; an answer form: 请填写整改措施), nothing written; ``missing`` (the
    form lacks its object, e.g. 请选择问题): that warning, nothing written.  A refusal
    (``etl.errors.SupervisionError``: stale view, out of scope, ...): its Chinese message as an error, nothing
    written.  Success: ``done`` with the id(s) the action returned (or ``describe(result)``), shown after a
    rerun that redraws the page from the new state.
    """
    if not reason or not reason.strip():
        st.warning(t(empty))
        return False
    if missing:
        st.warning(t(missing))
        return False
    try:
        result = action(reason.strip())
    except EtlError as exc:
        st.error(str(exc))
        return False
    if describe is not None:
        st.session_state["_flash"] = f"{t(done)}（{describe(result)}）"
    else:
        ids = "、".join(str(r) for r in result) if isinstance(result, list | tuple) else str(result)
        st.session_state["_flash"] = f"{t(done)}（{t('编号')}：{ids}）"
    st.rerun()
    return True  # pragma: no cover - st.rerun does not return


def page_link(page_id: str, label: str, unit: str | None = None) -> None:
    """A link to another page of the navigation (``pages/<page_id>.py``), optionally preselecting a unit."""
    st.page_link(
        str(queries.ROOT / "pages" / f"{page_id}.py"), label=t(label), query_params={"unit": unit} if unit else None
    )


def shown_versions(key: str, current: dict) -> dict:
    """The versions the user saw on the previous run (what a write passes back: the stale-write guard).

    Remembers ``current`` for the next run; a key first shown on this run keeps its current version.
    """
    slot = f"_shown_{key}"
    seen = st.session_state.get(slot, {})
    st.session_state[slot] = dict(current)
    return {k: seen.get(k, v) for k, v in current.items()}


def publication_switch(url: str, period: str, scheme_id: str | None = None) -> int | None:
    """For a published period: the badge 已发布 vN and the toggle 显示当前数据（草稿）.

    Returns the latest published version to show, or None for the current figures (the toggle on, the period
    never published, or ``scheme_id`` other than the published scheme: that scheme's current figures).
    """
    pubs = queries.publications(url, period)
    latest = None if pubs.empty else pubs.sort_values("version").iloc[-1]
    if latest is None or (scheme_id is not None and scheme_id != latest["scheme_id"]):
        st.badge(t("未发布（当前数据）"), color="gray")
        return None
    slot = st.empty()  # the badge above its toggle
    if st.toggle(t("显示当前数据（草稿）"), key="show_current"):
        slot.badge(t("草稿（当前数据）"), color="orange")
        return None
    slot.badge(f"{t('已发布')} v{int(latest['version'])}（{str(latest['published_at'])[:16]}）", color="green")
    return int(latest["version"])


def score_headline(scores: pd.DataFrame, unit: str | None) -> None:
    """The selected unit's total, grade and rank as metrics (nothing when it has no score)."""
    from dashboard.logic import fmt_num, scores_view

    mine = scores_view(scores[scores["unit_code"] == unit]) if unit is not None else scores.iloc[0:0]
    if mine.empty:
        return
    c1, c2, c3 = st.columns(3)
    c1.metric(t("总分"), fmt_num(mine["total"].iloc[0]))
    c2.metric(t("等级"), str(mine["grade"].iloc[0] or "—"))
    c3.metric(t("名次"), fmt_num(mine["rank"].iloc[0]))


def data_notes(ctx: UserContext, unit: str | None) -> None:
    """What the figures below leave out: the objects the rules could not judge (the data-quality queue, 数据质量
    page) and, when the last run could not check the originals, that the integrity figures say nothing of them."""
    note = queries.not_judged_note(url(), ctx.scope, unit)
    if note:
        st.info(f"{note}{t('（详见“数据质量”页）')}")
    why = queries.integrity_not_checked(url())
    if why:
        st.warning(f"{t('本次运行未检查原始文件完整性')}：{why}")


# --- trends (issue 18): the monthly trend with the same month of last year, and the change arrows -------------


def trend_panel(
    ctx: UserContext,
    unit: str | None,
    period: str,
    scheme_id: str | None = None,
    key: str = "trend",
    published: bool = False,
) -> None:
    """月度趋势（同比）: a series picker (全程记录率 first, the total, events, every metric), the period's value
    against the previous period (环比) and the same period of last year (同比) with arrows and numbers, and the
    months of the period's year over the same months of last year.  Always the current figures (``published``:
    the page above shows published ones, which the caption says)."""
    from dashboard import charts, logic

    st.subheader(t("月度趋势（同比）"))
    if published:
        st.caption(t("趋势按当前数据计算（含发布后的变化）"))
    options = logic.trend_options()
    pick, *cols = st.columns([1.2, 1, 1])
    series = pick.selectbox(t("趋势指标"), list(options), format_func=lambda s: t(options[s]), key=f"{key}_series")
    scores = queries.unit_score_history(url(), ctx.scope, unit, scheme_id)
    values = logic.trend_values(series, scores, queries.unit_metric_history(url(), ctx.scope, unit))
    for col, card in zip(cols, logic.change_cards(values, period, series, i18n.lang()), strict=False):
        col.metric(**card)
    chart(
        charts.yoy(
            logic.monthly_trend(values, period, series),
            f"{t(options[series])} · {t('月度趋势（同比）')}",
            *logic.year_names(period, i18n.lang()),
            scale=logic.trend_scale(series),
            axis_title="" if logic.is_rate(series) else t(options[series]),
        )
    )


def spark_table(df: pd.DataFrame, spark: str) -> None:
    """A small table whose column ``spark`` holds lists of numbers, drawn as a line per row (text cells else)."""
    shown = df.rename(columns=lambda c: t(c))
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={t(spark): st.column_config.LineChartColumn(t(spark), width="medium")},
    )


def audited_view(ctx: UserContext, page: str, action: str, obj: str, reason: str | None = None) -> bool:
    """Record a view in the audit log once per session and object, without asking for a reason (an officer's own
    record: issue 18), or with the reason already given for the view it belongs to.  False, with the error shown,
    when the audit row could not be written: then the page shows nothing of it."""
    given: dict = st.session_state.setdefault("_reasons", {})  # cleared at logout, like the reasons
    k = f"view|{page}|{action}|{obj}"
    if k in given:
        return True
    try:
        audit.record(queries.engine(url()), ctx, page, action, obj, reason)
    except EtlError as exc:  # never show what the audit log did not record
        st.error(str(exc))
        return False
    given[k] = reason or ""
    return True


def workbook_download(
    ctx: UserContext, url: str, unit: str | None, period: str, scheme: str | None, version: int | None
) -> None:
    """The assessment workbook's download (page 考评): behind a reason (audited), live or the published
    ``version``; a builder failure shows a short message with an error id (the details go to the log)."""
    from dashboard import exports

    if not ctx.may_export or not reason_gate(
        ctx,
        "assessment",
        "export_workbook",
        f"{unit}:{period}:{scheme}",
        key="workbook",
        prompt="导出须填写事由（将记入系统日志）",
    ):
        return
    try:
        data = exports.assessment_workbook(
            url, period, unit, ctx.username, ctx.scope, scheme, version is None, published_version=version
        )
    except Exception as exc:  # noqa: BLE001 - the builder is a separate module: a short message, the log the details
        st.error(f"{t('考评表生成功能暂不可用')}（{t('错误编号')} {error_id(exc, 'assessment workbook')}）")
    else:
        st.download_button(
            t("下载考评表"),
            data,
            file_name=f"考评表_{unit}_{period}.xlsx",
            key="workbook_dl",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
