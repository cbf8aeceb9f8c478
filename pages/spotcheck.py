"""随机抽查 Spot-checks: the legal department draws a campaign, follows its progress and reviews each sampled
object (an event's timeline and original clips, a case's documents) against the checklist; leaders read."""

import streamlit as st

from dashboard import logic, loop, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("spotcheck", "随机抽查")
url = ui.url()
names = queries.unit_names(url)
camps = queries.campaigns(url, ctx.scope)
if ctx.role == "legal":
    loop.draw_form(ctx, url, expanded=camps.empty)

st.subheader(t("抽查批次"))
if camps.empty:
    st.info(t("尚无抽查批次"))
    st.stop()
ui.table(logic.campaigns_view(camps, names), names, height=logic.table_height(len(camps)))
by_id = camps.set_index("campaign_id")
cid = st.selectbox(
    t("选择批次"),
    list(camps["campaign_id"]),
    format_func=lambda c: logic.campaign_label(c, by_id.loc[c]),
    key="campaign",
)
campaign = by_id.loc[cid].copy()
campaign["campaign_id"] = cid
loop.campaign_progress(campaign)
loop.close_campaign_form(ctx, url, campaign)

items = queries.campaign_items(url, ctx.scope, cid)
shown = ui.shown_versions(f"spot_{cid}", dict(zip(items["object_key"], items["version"], strict=True)))
ui.table(logic.items_view(items), names, height=logic.table_height(len(items)))
verdicts = dict(zip(items["object_key"], items["verdict"], strict=True))
key = st.selectbox(
    t("选择抽查对象"),
    list(items["object_key"]),
    index=None,
    placeholder=t("请选择"),
    format_func=lambda k: logic.item_label(k, verdicts.get(k)),
    key=f"spot_object_{cid}",
)
if not key:
    st.stop()
item = queries.spot_item(url, ctx.scope, cid, key)
if item is None:
    st.warning(t("该抽查对象不存在或不在管辖范围内"))
    st.stop()
st.subheader(
    f"{t(logic.KIND_ZH.get(campaign['object_kind'], ''))} {key}（{names.get(item['unit_code'], item['unit_code'])}）"
)
if campaign["object_kind"] == "events":
    loop.event_review(ctx, url, key)
else:
    loop.case_review(ctx, url, key)
loop.checklist(ctx, url, campaign, item, shown.get(key))
