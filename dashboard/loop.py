"""Widgets of the supervision loop's pages: 随机抽查 (spot-checks), 整改 (rectification) and 待办 (inbox).

The pages stay short: each block here reads through ``dashboard.queries`` (the scope is applied there), writes
through ``dashboard.supervision`` (``etl.supervision.spotcheck`` / ``rectify``) with ``ui.write`` (reason first,
refusals shown in Chinese, nothing written), and audits views that need a reason with ``ui.reason_gate``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, exports, logic, queries, supervision, ui
from dashboard.auth import UserContext
from dashboard.i18n import t

PAGE = "spotcheck"
NOTICE_PAGE = "rectification"
RESULTS = ("pass", "fail", "n/a")


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


# --- 随机抽查 ------------------------------------------------------------------------------------------------


def draw_form(ctx: UserContext, url: str, expanded: bool) -> None:
    """The legal department's form that draws a campaign: period, kind, sample size per unit, seed, unit, reason."""
    avail = queries.available_periods(url)
    choices = [p for k in ("month", "quarter", "year") for p in avail.get(k, [])]
    with st.expander(t("发起抽查"), expanded=expanded), st.form("draw_form"):
        c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
        period = c1.selectbox(t("期间"), choices, key="draw_period")
        kind = c2.radio(t("抽查对象"), list(logic.KIND_ZH), format_func=lambda k: t(logic.KIND_ZH[k]), key="draw_kind")
        per_unit = c3.number_input(t("每单位抽取数"), min_value=1, max_value=200, value=5, key="draw_per_unit")
        seed = c4.number_input(t("随机种子"), min_value=0, value=2026, step=1, key="draw_seed")
        opts = queries.units(url, ctx.scope)
        names = dict(zip(opts["unit_code"], opts["name"], strict=True))
        unit = st.selectbox(
            t("抽查范围"),
            [None, *opts["unit_code"]],
            format_func=lambda u: t("全部管辖单位") if u is None else names.get(u, u),
            key="draw_unit",
        )
        reason = st.text_input(t("事由"), key="draw_reason", max_chars=500)
        submitted = st.form_submit_button(t("抽取"))
    if submitted:
        ui.write(
            reason,
            lambda r: supervision.draw_campaign(
                url, ctx, period=period, kind=kind, per_unit=per_unit, seed=seed, unit_code=unit, reason=r
            ),
            "抽查批次已抽取",
            missing=None if period else "请选择期间",
            describe=lambda d: (
                f"{t('编号')}：{d['campaign_id']}；{t('抽取')} {d['drawn']} / {d['population']}"
                + (f"；{d['note']}" if d.get("note") else "")
            ),
        )


def campaign_progress(campaign: pd.Series) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("抽取"), int(campaign.get("drawn") or 0))
    c2.metric(t("已审查"), int(campaign.get("reviewed") or 0))
    c3.metric(t("不合格"), int(campaign.get("failed") or 0))
    c4.metric(t("状态"), t(logic.CAMPAIGN_STATE_ZH.get(campaign.get("state"), str(campaign.get("state")))))
    if _text(campaign.get("draw_note")):
        st.caption(_text(campaign.get("draw_note")))


def event_review(ctx: UserContext, url: str, incident: str) -> None:
    """An event's timeline (window, each officer's clips, gaps), its clips and the original file played in the
    page after a reason (audited); a missing or unplayable file says why, and the review can still be recorded."""
    d = queries.event_detail(url, ctx.scope, incident)
    if d["event"].empty:
        st.warning(t("该事件已不在数据源中（对象已消失），仍可记录抽查结论"))
        return
    e = d["event"].iloc[0]
    st.text(
        f"{t('到达时间')}：{logic.fmt_time(e['arrived_at'])}　{t('结束时间')}：{logic.fmt_time(e['ended_at'])}　"
        f"{t('覆盖率')}：{logic.fmt_rate(e['covered_fraction'])}　{t('记录情况')}："
        f"{t(logic.STATUS_ZH.get(e['status'], str(e['status'])))}"
    )
    ui.chart(charts.event_timeline(e, d["clips"], d["gaps"], d["report"], d["officers"], t("时间轴")))
    clips = d["clips"]
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**{t('视频文件')}**")
        if clips.empty:
            st.info(t("窗口内没有视频文件"))
        else:
            ui.table(clips)
    with right:
        st.markdown(f"**{t('空档')}**")
        if d["gaps"].empty:
            st.caption(t("无空档"))
        else:
            ui.table(d["gaps"])
    if clips.empty:
        return
    clip = st.selectbox(
        t("播放原始视频"), list(clips["clip_id"]), index=None, placeholder=t("请选择"), key=f"play_{incident}"
    )
    if clip and ui.reason_gate(
        ctx, PAGE, "play_clip", clip, key=f"play_{clip}", prompt="播放原始视频须填写事由（将记入系统日志）"
    ):
        path, why = queries.clip_media(url, ctx.scope, clip)
        if path is None:
            st.warning(f"{t('无法播放该视频')}：{t(why or '')}。{t('仍可根据其他材料记录抽查结论')}")
            return
        player, info = st.columns([3, 2])
        player.video(str(path), format=queries.video_mime(path))
        c = clips[clips["clip_id"] == clip].iloc[0]
        info.text(
            f"{t('文件编号')}：{clip}\n{t('警号')}：{_text(c.get('police_no'))}\n{t('设备编号')}：{_text(c.get('device_sn'))}\n"
            f"{t('开始')}：{logic.fmt_time(c.get('started_at'))}\n{t('结束时间')}：{logic.fmt_time(c.get('ended_at'))}"
        )
        info.caption(t("原始文件，播放已记入系统日志"))


def case_review(ctx: UserContext, url: str, case_no: str) -> None:
    """A case's action and document timeline, its documents and deliveries, and the findings the rules made."""
    d = queries.case_detail(url, ctx.scope, case_no)
    if d["case"].empty:
        st.warning(t("该案件已不在数据源中（对象已消失），仍可记录抽查结论"))
        return
    c = d["case"].iloc[0]
    st.text(
        f"{t('案由')}：{_text(c.get('title'))}　{t('程序')}：{t(logic.PROCEDURE_ZH.get(c.get('procedure'), ''))}　"
        f"{t('受案时间')}：{logic.fmt_time(c.get('registered_at'))}"
    )
    ui.chart(charts.case_timeline(d["actions"], d["documents"], d["deliveries"], d["clips"], t("案件时间轴")))
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{t('执法环节')}**")
        ui.table(d["actions"])
    with right:
        st.markdown(f"**{t('法律文书')}**")
        ui.table(d["documents"])
    if not d["findings"].empty:
        st.markdown(f"**{t('规则检查发现的问题')}**")
        ui.table(d["findings"])


def checklist(ctx: UserContext, url: str, campaign: pd.Series, item: dict, version: int | None) -> None:
    """The checklist of one sampled object: each point pass / fail / n-a with a note, an overall note and the
    reason (legal department, open campaign); read-only for everyone else and for a closed campaign."""
    cid, key = int(campaign["campaign_id"]), str(item["object_key"])
    rows = logic.checklist_rows(queries.checklist(str(campaign["object_kind"])), item.get("points"))
    st.subheader(t("检查要点"))
    verdict = item.get("verdict")
    if isinstance(verdict, str):
        st.caption(
            f"{t('当前结论')}：{t(logic.SPOT_VERDICT_ZH.get(verdict, verdict))}（{_text(item.get('reviewed_by'))} "
            f"{logic.fmt_time(item.get('reviewed_at'))}）"
        )
    if ctx.role != "legal" or campaign.get("state") != "open":
        ui.table(logic.points_view(rows))
        st.caption(t("只读：抽查结论由法制部门记录") if ctx.role != "legal" else t("该批次已结束，不能再记录"))
        return
    with st.form(f"check_{cid}_{key}"):
        results: dict[str, tuple[str, str | None]] = {}
        for r in rows:
            c1, c2, c3 = st.columns([4, 3, 4])
            c1.markdown(f"**{r['point_id']}**　{t(r['label'])}")
            res = c2.radio(
                r["point_id"],
                RESULTS,
                index=RESULTS.index(r["result"]) if r["result"] in RESULTS else 0,
                format_func=lambda v: t(logic.POINT_RESULT_ZH[v]),
                horizontal=True,
                label_visibility="collapsed",
                key=f"pt_{cid}_{key}_{r['point_id']}",
            )
            note = c3.text_input(
                r["point_id"],
                value=r["note"],
                placeholder=t("说明（不符合时写明）"),
                label_visibility="collapsed",
                key=f"ptn_{cid}_{key}_{r['point_id']}",
            )
            results[r["point_id"]] = (res, note.strip() or None)
        note = st.text_area(t("审查意见"), value=_text(item.get("note")), key=f"spot_note_{cid}_{key}", height=80)
        reason = st.text_input(t("事由"), key="spot_reason", max_chars=500)
        submitted = st.form_submit_button(t("保存抽查结论"))
    if submitted:
        ui.write(
            reason,
            lambda r: supervision.record_review(
                url, ctx, cid, key, points=results, note=note.strip() or None, reason=r, version=version
            ),
            "抽查结论已保存",
            describe=lambda d: (
                f"{t('结论')}：{t(logic.SPOT_VERDICT_ZH.get(d['verdict'], d['verdict']))}"
                + (f"；{t('不符合要点')}：{'、'.join(d['failed_points'])}" if d.get("failed_points") else "")
            ),
        )


def close_campaign_form(ctx: UserContext, url: str, campaign: pd.Series) -> None:
    if ctx.role != "legal" or campaign.get("state") != "open":
        return
    with st.expander(t("结束本批次")), st.form("close_campaign_form"):
        reason = st.text_input(t("事由"), key="close_campaign_reason", max_chars=500)
        submitted = st.form_submit_button(t("结束批次"))
    if submitted:
        cid = int(campaign["campaign_id"])
        ui.write(reason, lambda r: supervision.close_campaign(url, ctx, cid, reason=r), "抽查批次已结束")


# --- 整改 ---------------------------------------------------------------------------------------------------


def issue_form(ctx: UserContext, url: str, expanded: bool) -> None:
    """The legal department issues a notice to a unit: for chosen findings, a unit's open findings of a period
    and rule set, or a campaign's failures; deadline (default today + rectify_days), text, Art. 35
    accountability (officers, paragraph), reason."""
    with st.expander(t("下发整改通知"), expanded=expanded):
        basis = st.radio(
            t("整改依据"),
            list(logic.NOTICE_BASIS_ZH),
            format_func=lambda b: t(logic.NOTICE_BASIS_ZH[b]),
            horizontal=True,
            key="notice_basis",
        )
        unit = ui.unit_picker(ctx, key="notice_unit")
        period = rules = campaign_id = None
        keys: list[str] = []
        if basis == "campaign":
            camps = queries.campaigns(url, ctx.scope)
            camps = camps[camps["failed"] > 0] if not camps.empty else camps
            by_id = camps.set_index("campaign_id")
            campaign_id = st.selectbox(
                t("抽查批次"),
                list(camps["campaign_id"]),
                index=None,
                placeholder=t("请选择"),
                format_func=lambda c: logic.campaign_label(c, by_id.loc[c]),
                key="notice_campaign",
            )
            if campaign_id is not None and unit:
                fails = queries.campaign_items(url, queries.effective_units(url, ctx.scope, unit), campaign_id)
                fails = fails[fails["verdict"] == "fail"]
                st.caption(f"{t('该单位及下级单位的不合格对象')}：{len(fails)}")
                ui.table(logic.items_view(fails), queries.unit_names(url))
        else:
            period = ui.period_picker(key="notice_period")
        if basis != "campaign" and period and unit:
            if basis == "period":
                found = queries.finding_rules(url, ctx.scope, unit, period)
                rules = st.multiselect(
                    t("规则（不选为全部）"), found, format_func=lambda r: t(logic.rule_label(r)), key="notice_rules"
                )
            cands = queries.notice_candidates(url, ctx.scope, unit, period, tuple(rules) if rules else None)
            st.caption(f"{t('可纳入整改的问题')}：{len(cands)}")
            ui.table(logic.review_view(cands), queries.unit_names(url), height=logic.table_height(len(cands), 6, 240))
            if basis == "findings":
                keys = st.multiselect(t("选择问题"), list(cands["finding_key"]), key="notice_keys")
        officers = queries.unit_officers(url, ctx.scope, unit) if unit else pd.DataFrame(columns=["police_no", "name"])
        officer_names = dict(zip(officers["police_no"], officers["name"], strict=True))
        on = queries.today()
        with st.form("notice_form"):
            deadline = st.date_input(
                t("整改期限"), value=logic.default_deadline(on, queries.rectify_days()), min_value=on, key="deadline"
            )
            text = st.text_area(t("整改要求"), value=t(DEFAULT_TEXT), key="notice_text", height=100)
            c1, c2 = st.columns(2)
            named = c1.multiselect(
                t("追责建议：责任人员（可不选）"),
                list(officers["police_no"]),
                format_func=lambda p: f"{p} {officer_names.get(p, '')}",
                key="notice_officers",
            )
            paragraph = c2.selectbox(
                t("第三十五条适用情形"),
                [None, *logic.ART35_PARAGRAPHS],
                format_func=lambda p: t("不提出追责建议") if p is None else logic.ART35_PARAGRAPHS[p],
                key="notice_paragraph",
            )
            reason = st.text_input(t("事由"), key="notice_reason", max_chars=500)
            submitted = st.form_submit_button(t("下发整改通知"))
    if submitted:
        acc = (
            {"officers": list(named), "paragraph": logic.ART35_PARAGRAPHS.get(paragraph)}
            if paragraph or named
            else None
        )
        missing = "请选择问题" if basis == "findings" and not keys else None
        missing = missing or ("请选择抽查批次" if basis == "campaign" and campaign_id is None else None)
        ui.write(
            reason,
            lambda r: supervision.issue_notice(
                url,
                ctx,
                unit,
                finding_keys=keys or None,
                period=period if basis == "period" else None,
                rules=rules or None,
                campaign_id=campaign_id,
                deadline=deadline,
                text=text,
                accountability=acc,
                reason=r,
            ),
            "整改通知已下发",
            missing=missing or (None if unit else "请选择单位"),
            describe=lambda d: (
                f"{t('编号')}：{d['notice_id']}；{t('问题')} {d['findings']} {t('项')}；{t('整改期限')} {d['deadline']}"
            ),
        )


DEFAULT_TEXT = "经督察，你单位存在下列执法全过程记录问题。请依照《长治市公安机关行政执法全过程记录实施办法》第三十五条，于整改期限前完成整改，并将整改措施报法制部门。"


def notice_picker(notices: pd.DataFrame, names: dict[str, str], key: str = "notice") -> int | None:
    """'#3 东街派出所 待整改' for each listed notice; the chosen notice id (None until one is chosen)."""
    if notices.empty:
        return None
    labels = {
        int(n.notice_id): f"#{int(n.notice_id)} {names.get(n.unit_code, n.unit_code)} "
        f"{t(logic.NOTICE_STATE_ZH.get(n.state, n.state))}"
        for n in notices.itertuples()
    }
    return st.selectbox(
        t("选择整改通知"), list(labels), index=None, placeholder=t("请选择"), format_func=labels.get, key=key
    )


def notice_detail(ctx: UserContext, url: str, notice_id: int) -> dict | None:
    """One notice: unit, state, deadline, overdue, text, accountability, its findings and its history."""
    n = queries.notice(url, ctx.scope, notice_id)
    if n is None:
        st.warning(t("该整改通知不存在或不在管辖范围内"))
        return None
    names = queries.unit_names(url)
    st.subheader(f"{t('整改通知')} #{notice_id}　{names.get(n['unit_code'], n['unit_code'])}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(t("状态"), t(logic.NOTICE_STATE_ZH.get(n["state"], n["state"])))
    c2.metric(t("整改期限"), str(n.get("deadline"))[:10])
    c3.metric(t("逾期"), t("是") if n.get("overdue") in (1, True) else t("否"))
    c4.metric(t("问题数"), int(n.get("findings_count") or len(n["findings"])))
    st.text(f"{t('整改要求')}：{_text(n.get('text'))}")  # people's words: plain text, never markup
    acc = logic.accountability_text(n.get("accountability"))
    if acc:
        st.text(f"{t('追责建议')}：{acc}")
    st.markdown(f"**{t('整改问题')}**")
    found = n["findings"]
    ui.table(found, names, height=logic.table_height(len(found), 8, 320))
    st.markdown(f"**{t('办理记录')}**")
    st.text("\n".join(logic.notice_history_lines(n["events"])))
    return n


def notice_download(ctx: UserContext, url: str, notice_id: int) -> None:
    """The printable 整改通知书 (.docx): a reason first (audited as an export), then the download button."""
    if not ctx.may_export:
        return
    st.markdown(f"**{t('整改通知书')}**")
    if ui.reason_gate(
        ctx,
        NOTICE_PAGE,
        "export_notice",
        str(notice_id),
        key=f"docx_{notice_id}",
        prompt="导出须填写事由（将记入系统日志）",
    ):
        try:
            data = exports.notice_docx(url, ctx.scope, notice_id)
        except Exception as exc:  # noqa: BLE001 - the document builder is a separate module: say why, keep the page
            st.error(f"{t('整改通知书生成功能暂不可用')}：{exc}")
        else:
            st.download_button(
                t("下载整改通知书"),
                data,
                file_name=f"整改通知书_{notice_id}.docx",
                key=f"docx_dl_{notice_id}",
                mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )


def recheck_form(ctx: UserContext, url: str, n: dict, version: int | None) -> None:
    """The legal department's re-check of an answered notice: accept (closed) or return with a note."""
    if n["state"] != "responded":
        st.caption(t("单位答复后方可复查") if n["state"] != "closed" else t("该通知已办结"))
        return
    st.subheader(t("复查"))
    with st.form("recheck_form"):
        verdict = st.radio(
            t("复查结论"),
            list(logic.CLOSE_VERDICT_ZH),
            format_func=lambda v: t(logic.CLOSE_VERDICT_ZH[v]),
            horizontal=True,
            key="recheck_verdict",
        )
        note = st.text_area(t("复查意见"), key="recheck_note", height=80)
        new_deadline = st.date_input(t("新的整改期限（退回时可选）"), value=None, key="recheck_deadline")
        submitted = st.form_submit_button(t("提交复查"))
    if submitted:
        nid = int(n["notice_id"])
        ui.write(
            note,
            lambda r: supervision.close_notice(
                url,
                ctx,
                nid,
                verdict,
                note=r,
                new_deadline=new_deadline if verdict == "return" else None,
                version=version,
            ),
            "复查已保存",
            empty="请填写复查意见",
        )


def respond_form(ctx: UserContext, url: str, n: dict, version: int | None) -> None:
    """The unit administrator answers an open or returned notice with the measures taken."""
    if n["state"] not in ("open", "returned"):
        st.caption(t("该通知已反馈或已办结，无需再次反馈"))
        return
    st.subheader(t("整改反馈"))
    with st.form("respond_form"):
        text = st.text_area(t("整改措施"), key="respond_text", height=120)
        submitted = st.form_submit_button(t("提交整改反馈"))
    if submitted:
        nid = int(n["notice_id"])
        ui.write(
            text,
            lambda r: supervision.respond_notice(url, ctx, nid, text=r, version=version),
            "整改反馈已提交",
            empty="请填写整改措施",
        )


# --- 抽查合格率 and 整改按期完成率 on the overview and the assessment page --------------------------------


def loop_metrics(ctx: UserContext, url: str, unit: str | None, period: str) -> None:
    """Two metrics: 抽查合格率 (reviewed objects without a fail ÷ reviewed) and 整改按期完成率 (notices closed by
    their deadline ÷ notices due in the period), "—" when nothing was reviewed or due."""
    try:
        m = queries.loop_metrics(url, ctx.scope, unit, period, queries.today())
    except ImportError:  # the supervision loop's backend is not installed: nothing to show
        return
    c1, c2 = st.columns(2)
    for col, key, label in ((c1, "spotcheck_pass_rate", "抽查合格率"), (c2, "ontime", "整改按期完成率")):
        v = m[key]
        col.metric(
            t(label),
            logic.fmt_rate(logic.rate(v["numerator"], v["denominator"])),
            help=f"{logic.fmt_num(v['numerator'])} / {logic.fmt_num(v['denominator'])}",
        )


# --- 待办 --------------------------------------------------------------------------------------------------

PAGE_TITLES = {"appeals": "申诉", "rectification": "整改", "spotcheck": "随机抽查", "excuses": "情况说明"}


def todo_sections(ctx: UserContext, url: str) -> int:
    """Every section of the user's 待办 with its rows and a link to the page that handles it; the number of rows."""
    sections = queries.todo(url, ctx.username, ctx.scope, queries.today(), ctx)
    titles = queries.todo_sections()
    names = queries.unit_names(url)
    total = 0
    for sid, rows in sections.items():
        count = int(rows.attrs.get("total", len(rows)))  # the section's full count; at most ROW_LIMIT rows listed
        total += count
        st.subheader(f"{t(titles.get(sid, sid))}（{count}）")
        page = logic.todo_page(sid)
        if rows.empty:
            st.caption(t("无"))
            continue
        if page and ctx.may_open(page):
            ui.page_link(page, f"前往「{PAGE_TITLES.get(page, page)}」处理")
        st.caption(t(logic.TODO_HINTS.get(sid, "")))
        ui.table(logic.todo_view(sid, rows), names, height=logic.table_height(len(rows)))
    return total
