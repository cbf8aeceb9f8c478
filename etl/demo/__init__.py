"""``python -m etl demo``: a deterministic demo of every source system, with a manifest of its breaches.

Layout of the output folder::

    sources.yaml         declares every system below (sources.md "Declaring sources")
    users.yaml           demo accounts (bcrypt, salt derived from the seed)
    manifest.csv         the findings rules.md must produce as of 2026-11-28 23:59:59
    org.sqlite           org_units, officers
    cases/*.csv          case system, UTF-8 with BOM
    dispatch/*.csv       dispatch system, GB18030, Chinese table and column names
    media.sqlite         devices, device_assignments, unit_admins, clips, access_log
    windows/*.xlsx       service_windows
    ledgers/<unit>.xlsx  equipment ledger workbooks
    media/...            original clip files (unless --no-media): random bytes of the catalogued size, and a
                         few short playable WebM videos (``etl.demo.video``) for clips of a few on-site events
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np

from etl.demo import faults, output
from etl.demo.cases import build_cases
from etl.demo.common import EVAL_T, HOUR, LAST_T, MAX_YEARS, NULL_T, span_start
from etl.demo.manifest import build_manifest
from etl.demo.media import (
    access_log,
    attach_devices,
    delete_clips,
    expand_clips,
    ledgers,
    number_clips,
    service_windows,
    swap_devices,
    tag_clips,
)
from etl.demo.org import SCALES, build_admins, build_devices, build_officers, build_teams, build_units, demo_users
from etl.demo.timeline import build_timeline
from etl.demo.video import encode_videos, pick_video_clips, video_path
from etl.errors import ConfigError

DEMO_PASSWORD = "Demo#2026"
EVALUATION_DATE = "2026-11-28 23:59:59"
DISPATCH_TABLES = {
    "incidents": (
        "警情",
        {
            "incident_no": "警情编号",
            "unit_code": "管辖单位代码",
            "category": "警情类别",
            "received_at": "接警时间",
            "arrived_at": "到达现场时间",
            "ended_at": "处置结束时间",
            "on_site": "现场执法",
            "case_no": "关联案件编号",
            "updated_at": "更新时间",
        },
    ),
    "incident_officers": ("出警人员", {"incident_no": "警情编号", "police_no": "出警人警号"}),
    "interruption_reports": (
        "记录中断说明",
        {
            "report_id": "说明编号",
            "incident_no": "警情编号",
            "police_no": "填报人警号",
            "reason": "中断原因",
            "reported_at": "填报时间",
        },
    ),
}
DISPATCH_DT = "%Y/%m/%d %H:%M:%S"


def build(scale: str = "small", seed: int = 2026, years: int = 1, *, city=None) -> dict:  # noqa: ANN001
    """Every source table as a frame (times as epoch seconds), plus what the writers need.

    ``years``: how many years of data up to the evaluation date (each with a year's events and cases; the
    earlier ones with more lapses, ``common.lapse_factor``); one year gives the same data as ever.
    ``city``: one city of a province demo (``etl.demo.province.City``): its ``units`` and ``officers`` hooks
    give the unit tree its own codes and names and the officers police numbers unique in the province."""
    if scale not in SCALES:
        raise ConfigError(f"未知的演示规模：{scale}（可选 small、city）")
    if not isinstance(years, int) or not 1 <= years <= MAX_YEARS:
        raise ConfigError(f"演示年数应为 1 至 {MAX_YEARS}：{years}")
    rng = np.random.default_rng(seed)
    cfg = SCALES[scale]
    start = span_start(years)
    units = build_units(scale)
    if city is not None:
        units = city.units(units)
    officers = build_officers(rng, units, scale)
    if city is not None:
        officers = city.officers(officers)
    teams = build_teams(rng, officers)
    org = build_devices(rng, units, officers, teams, start)
    build_admins(rng, org, start)
    tl = build_timeline(rng, org, cfg["events"] * years, start)
    cs = build_cases(rng, org, tl, cfg["cases"] * years)
    swap_devices(rng, org, tl)
    recs = attach_devices(rng, org, tl)
    clips = expand_clips(rng, recs)
    tag_clips(rng, clips, tl, cs, recs)
    delete_clips(rng, clips)
    clips = number_clips(clips, org.devices.set_index("device_sn")["unit_code"])
    clips["size_bytes"] = rng.integers(2048, 6144, len(clips))
    clips["police_no"] = np.where(clips["explicit"].to_numpy(), clips["police_no"].to_numpy(), None)
    log = access_log(rng, org, clips, np.random.default_rng([seed, 11]))  # rules v1.1 cases: a stream of their own
    windows = service_windows(rng, units)
    books = ledgers(rng, org)
    alive = np.flatnonzero(clips["deleted_at"].to_numpy() == NULL_T)
    pick = rng.permutation(alive)[: max(2, int(len(alive) * 0.006))]
    half = len(pick) // 2
    hash_ids, missing_ids = set(clips["clip_id"].to_numpy()[pick[:half]]), set(clips["clip_id"].to_numpy()[pick[half:]])
    video_ids = pick_video_clips(clips, tl.incidents, seed, hash_ids | missing_ids)
    is_video = clips["clip_id"].isin(video_ids).to_numpy()
    clips.loc[is_video, "file_path"] = [video_path(p) for p in clips.loc[is_video, "file_path"]]

    ensure_every_rule({"windows": windows, "devices": org.devices, "cs": cs, "log": log, "books": books})
    inc = tl.incidents.copy()
    case_of_inc = cs.cases.dropna(subset=["incident_no"]).set_index("incident_no")["case_no"]
    inc["case_no"] = case_of_inc.reindex(inc["incident_no"]).to_numpy()
    inc["updated_at"] = np.minimum(
        np.where(inc["ended_at"] != NULL_T, inc["ended_at"], inc["received_at"])
        + rng.integers(600, 6 * HOUR, len(inc)),
        LAST_T,
    )
    cases = cs.cases.drop(columns=["incident_no"])
    d = {
        "scale": scale,
        "seed": seed,
        "years": years,
        "eval_t": EVAL_T,
        "org_units": units,
        "officers": officers,
        "devices": org.devices,
        "device_assignments": org.assignments,
        "unit_admins": org.admins,
        "clips": clips,
        "access_log": log,
        "incidents": inc,
        "incident_officers": tl.incident_officers,
        "reports": tl.reports,
        "interruption_reports": tl.reports,
        "cases": cases,
        "case_officers": cs.case_officers,
        "case_actions": cs.actions,
        "actions": cs.actions,
        "case_documents": cs.documents,
        "deliveries": cs.deliveries,
        "service_windows": windows,
        "ledgers": books,
        "users": demo_users(org),
        "hash_ids": hash_ids,
        "missing_ids": missing_ids,
        "video_ids": video_ids,
        "swaps": org.swaps,
    }
    # a few objects the rules cannot judge (new rows only): the demo's data-quality queue is not empty
    d["unjudgeable"] = faults.add_unjudgeable(np.random.default_rng([seed, 16]), d)
    return d


def ensure_every_rule(p: dict) -> None:
    """One deliberate breach of the rarest rules, so that even a small demo exercises every rule."""
    win = p["windows"]
    county = win.index[(win["unit_code"].str[6:] == "000000") & (win["unit_code"].str[4:6] != "00")]
    if len(county):
        win.loc[county[-1], ["cctv_installed", "cctv_recording"]] = [1, 0]  # WINDOW-CCTV
    dev = p["devices"]
    spare = dev.index[(dev["status"] == "spare") & dev["unit_code"].str.endswith("000000")]
    if len(spare):
        dev.loc[spare[0], ["status", "status_since"]] = ["repair", EVAL_T - 45 * 86400]  # EQUIP-REPAIR
    cs = p["cs"]
    docs, cases = cs.documents, cs.cases
    nf = cases[(cases["filed"] == 0) & cases["source"].isin(["complaint", "report", "assigned", "transferred"])]
    notice = docs[(docs["doc_type"] == "not_filed_notice") & docs["case_no"].isin(nf["case_no"])]
    if len(notice):  # NOT-FILED-NOTICE
        cs.documents = docs = docs.drop(index=notice.index[:1])
        cs.deliveries = cs.deliveries[cs.deliveries["doc_id"] != notice["doc_id"].iloc[0]]
    major = cases[(cases["is_major"] == 1) & (cases["decided_at"] != NULL_T)]["case_no"]
    review = docs[(docs["doc_type"] == "legal_review") & docs["case_no"].isin(major)]
    if len(review):  # MAJOR-REVIEW
        cs.documents = docs.drop(index=review.index[:1])
    log = p["log"]
    ext = log.index[(log["action"] == "external") & (log["approved_at"] != NULL_T)]
    if len(ext):  # ACCESS-EXTERNAL
        log.loc[ext[0], "approved_at"] = log.loc[ext[0], "at"] + 3600
    if p["books"]:  # EQUIP-LEDGER
        book = p["books"][sorted(p["books"])[0]]
        book.loc[0, "状态"] = "丢失" if book.loc[0, "状态"] != "丢失" else "在用"


def generate(
    out: Path,
    scale: str = "small",
    seed: int = 2026,
    media: bool = True,
    years: int = 1,
    cities: int = 10,
    base: str = "city",
) -> str:
    """Write the demo into ``out`` (replacing a previous demo there); returns a short Chinese summary.

    ``scale="province"``: ``cities`` cities of ``base`` scale under one province (``etl.demo.province``)."""
    if scale == "province":
        from etl.demo.province import generate_province

        return generate_province(out, cities=cities, base=base, seed=seed, media=media, years=years)
    t0 = time.perf_counter()
    out = Path(out)
    d = build(scale, seed, years)
    if out.exists():
        for name in ("media", "cases", "dispatch", "windows", "ledgers"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    clips = d["clips"]
    integrity = write_tables(out, d, seed, media)
    (out / "windows").mkdir()
    output.write_xlsx(out / "windows" / "service_windows.xlsx", d["service_windows"], "受理窗口")
    output.write_yaml(out / "sources.yaml", sources_yaml(media))
    # the demo marker: the SHA-256 of this sources.yaml, which `etl run` records in the warehouse (etl.users)
    marker = {"sources_sha256": hashlib.sha256((out / "sources.yaml").read_bytes()).hexdigest()}
    output.write_yaml(out / "users.yaml", {"demo": marker, **users_yaml(d, seed)})
    manifest = build_manifest(d, integrity)
    manifest.to_csv(out / "manifest.csv", index=False, lineterminator="\n")
    secs = time.perf_counter() - t0
    media_note = f"（含媒体文件，其中可播放视频 {len(d['video_ids'])} 个）" if media else "（未生成媒体文件）"
    n_onsite = int(((d["incidents"]["on_site"] == 1) & (d["incidents"]["arrived_at"] != NULL_T)).sum())
    return (
        f"演示数据已生成：{out}（规模 {scale}，{years} 年，种子 {seed}，评估日 {EVALUATION_DATE}）\n"
        f"单位 {len(d['org_units'])} 个，人员 {len(d['officers'])} 人，设备 {len(d['devices'])} 台，"
        f"现场执法 {n_onsite} 起，案件 {len(d['cases'])} 件，视音频 {len(clips)} 条"
        f"{media_note}，预期问题 {len(manifest)} 条，用时 {secs:.1f} 秒"
    )


def write_tables(out: Path, d: dict, seed: int, media: bool, append: bool = False) -> dict | None:
    """Write the media files and every source table but the service windows; returns what integrity finds.

    ``append``: add to the files already there (one city after the other, ``etl.demo.province``)."""
    clips = d["clips"]
    if media:
        videos = encode_videos(clips, d["video_ids"], seed)
        clips["sha256"] = output.write_media(out / "media", clips, seed, d["hash_ids"], d["missing_ids"], videos)
        for cid, body in videos.items():  # the platform catalogues the real file's size
            clips.loc[clips["clip_id"] == cid, "size_bytes"] = len(body)
        integrity = {"hash": d["hash_ids"], "missing": d["missing_ids"]}
    else:
        clips["sha256"] = output.pseudo_hashes(len(clips), seed)
        integrity = None

    output.write_sqlite(out / "org.sqlite", {"org_units": d["org_units"], "officers": d["officers"]}, append=append)
    (out / "cases").mkdir(exist_ok=append)
    for t in ("cases", "case_officers", "case_actions", "case_documents", "deliveries"):
        output.write_csv(out / "cases" / f"{t}.csv", output.text_frame(d[t], t), "utf-8-sig", append=append)
    (out / "dispatch").mkdir(exist_ok=append)
    for t, (name, cols) in DISPATCH_TABLES.items():
        frame = output.text_frame(d[t], t, DISPATCH_DT).rename(columns=cols)
        output.write_csv(out / "dispatch" / f"{name}.csv", frame, "gb18030", append=append)
    output.write_sqlite(
        out / "media.sqlite",
        {t: d[t] for t in ("devices", "device_assignments", "unit_admins", "clips", "access_log")},
        append=append,
    )
    (out / "ledgers").mkdir(exist_ok=append)
    for unit, book in d["ledgers"].items():
        output.write_xlsx(out / "ledgers" / f"{unit}.xlsx", book, "执法记录仪使用管理台账")
    return integrity


def sources_yaml(media: bool) -> dict:
    tables = {
        t: {"name": name, "columns": {zh: en for en, zh in cols.items()}} for t, (name, cols) in DISPATCH_TABLES.items()
    }
    data: dict = {"version": 1}
    if media:
        data["media_root"] = "media"
    data["systems"] = {
        "org": {"url": "sqlite:///org.sqlite"},
        "cases": {"folder": "cases", "format": "csv", "encoding": "utf-8-sig"},
        "dispatch": {"folder": "dispatch", "format": "csv", "encoding": "gb18030", "datetime_format": DISPATCH_DT},
        "media": {"url": "sqlite:///media.sqlite"},
        "windows": {"folder": "windows", "format": "xlsx"},
        "ledgers": {"folder": "ledgers"},
    }
    data["tables"] = tables
    return data


def users_yaml(d: dict, seed: int) -> dict:
    names = d["officers"].set_index("police_no")["name"]
    users = {}
    for user, (pno, role, unit) in d["users"].items():
        users[user] = {
            "name": str(names[pno]),
            "role": role,
            "unit_code": unit,
            "police_no": pno,
            "password_hash": output.bcrypt_hash(DEMO_PASSWORD, seed, user),
        }
    return {"users": users}


__all__ = ["generate", "build", "DEMO_PASSWORD", "EVALUATION_DATE"]
