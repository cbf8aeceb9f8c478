"""Organisation of the demo: units, officers, patrol teams, devices, assignments, unit admins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.demo.common import DAY, EVAL_T, HOUR, NULL_T, YEAR_START, ts

CITY = ("140400000000", "长治市公安局")
# (division code, bureau name, short name used in station names, station count at city scale)
COUNTIES = [
    ("140403", "长治市公安局潞州分局", "潞州", 15),
    ("140404", "长治市公安局上党分局", "上党", 13),
    ("140405", "长治市公安局屯留分局", "屯留", 12),
    ("140406", "长治市公安局潞城分局", "潞城", 12),
    ("140423", "襄垣县公安局", "襄垣", 13),
    ("140425", "平顺县公安局", "平顺", 11),
    ("140426", "黎城县公安局", "黎城", 11),
    ("140427", "壶关县公安局", "壶关", 12),
    ("140428", "长子县公安局", "长子", 13),
    ("140429", "武乡县公安局", "武乡", 12),
    ("140430", "沁县公安局", "沁县", 11),
    ("140431", "沁源县公安局", "沁源", 15),
]
PLACES = [
    "东街",
    "西街",
    "南街",
    "北街",
    "太行",
    "英雄",
    "长北",
    "延安",
    "紫金",
    "城东",
    "城西",
    "城南",
    "城北",
    "堠北庄",
    "老顶山",
    "大辛庄",
    "马厂",
    "黄碾",
    "西火",
    "苏店",
    "韩店",
    "八义",
    "夏店",
    "固村",
    "王桥",
    "虒亭",
    "下良",
    "善福",
    "龙溪",
    "石哲",
    "店上",
    "郭村",
    "贾村",
    "河神庙",
    "上村",
    "丰宜",
    "南垂",
    "北董",
]
STATION_KINDS = ["派出所"] * 7 + ["交警中队", "治安管理大队", "巡特警大队"]
SURNAMES = list(
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
GIVEN = list("建国军伟强磊洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳晨亮志文海峰丽娜敏静燕红霞婷雪")

SCALES = {
    # counties, stations per county (None: COUNTIES table), officers per station, extra spares per station
    "small": {"counties": [0, 4], "stations": 3, "station_officers": 8, "events": 2000, "cases": 600},
    "city": {"counties": list(range(12)), "stations": None, "station_officers": 19, "events": 250_000, "cases": 80_000},
}


@dataclass
class Org:
    units: pd.DataFrame
    officers: pd.DataFrame
    teams: pd.DataFrame  # team_id, unit_code, police_no (one row per member), slot_lo
    devices: pd.DataFrame
    assignments: pd.DataFrame  # device_sn, police_no, from_at, to_at (int seconds, NULL_T open)
    admins: pd.DataFrame
    main_device: dict  # police_no -> device_sn held all year (or until swap)
    swaps: pd.DataFrame  # police_no, old_sn, new_sn, at (filled later by the timeline)
    spares: dict  # station unit_code -> list of spare device_sn (stand-ins)


def build_units(scale: str) -> pd.DataFrame:
    cfg = SCALES[scale]
    rows = [(CITY[0], CITY[1], None, "city")]
    for ci in cfg["counties"]:
        code6, name, short, n_city = COUNTIES[ci]
        county = code6 + "000000"
        rows.append((county, name, CITY[0], "county"))
        n = cfg["stations"] or n_city
        for k in range(n):
            kind = STATION_KINDS[k % len(STATION_KINDS)] if k else "派出所"
            place = PLACES[(k * 7 + ci * 3) % len(PLACES)]
            sname = f"{name}{place}{kind}" if kind == "派出所" else f"{name}{kind}" + ("" if k < 10 else f"{k - 9}")
            rows.append((f"{code6}{51 + k:02d}0000", sname, county, "station"))
    return pd.DataFrame(rows, columns=["unit_code", "name", "parent_code", "level"])


def _names(rng: np.random.Generator, n: int) -> list[str]:
    sur = rng.choice(SURNAMES, n)
    g1 = rng.choice(GIVEN, n)
    g2 = rng.choice(GIVEN, n)
    two = rng.random(n) < 0.7
    return [s + a + (b if t else "") for s, a, b, t in zip(sur, g1, g2, two, strict=True)]


def build_officers(rng: np.random.Generator, units: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Officers with roles: city/county staff (leaders, legal, equipment, it, admin) and station officers."""
    per_station = SCALES[scale]["station_officers"]
    rows: list[tuple] = []  # unit_code, kind, leader, active, role
    for code, level in zip(units["unit_code"], units["level"], strict=True):
        if level == "city":
            roles = ["leader", "leader", "legal", "legal", "equipment", "it", "staff"] + (
                ["staff"] * 12 if scale == "city" else []
            )
        elif level == "county":
            roles = ["leader", "leader", "legal", "admin"] + (["staff"] * 6 if scale == "city" else [])
        else:
            n = per_station + int(rng.integers(-2, 3))
            roles = ["leader", "admin"] + ["patrol"] * (n - 2) + ["inactive"]
        for role in roles:
            aux = role == "patrol" and rng.random() < 0.35
            rows.append((code, "auxiliary" if aux else "police", int(role == "leader"), int(role != "inactive"), role))
    df = pd.DataFrame(rows, columns=["unit_code", "kind", "leader", "active", "role"])
    n = len(df)
    nums = rng.choice(1_000_000, size=n, replace=False)
    aux_nums = rng.choice(100_000, size=n, replace=False)
    df["police_no"] = np.where(
        df["kind"] == "auxiliary", ["F" + f"{x:05d}" for x in aux_nums], [f"{x:06d}" for x in nums]
    )
    df["name"] = _names(rng, n)
    return df[["police_no", "name", "unit_code", "kind", "leader", "active", "role"]]


def build_teams(rng: np.random.Generator, officers: pd.DataFrame) -> pd.DataFrame:
    """Patrol teams of 1-3 station officers; an officer belongs to one team all year."""
    rows = []
    tid = 0
    patrol = officers[officers["role"].isin(["patrol", "leader", "admin"]) & (officers["unit_code"].str[6:8] != "00")]
    for unit, grp in patrol.groupby("unit_code", sort=True):
        members = grp[grp["role"] == "patrol"]["police_no"].tolist()
        i = 0
        while i < len(members):
            size = 1 if rng.random() < 0.12 else (3 if rng.random() < 0.12 else 2)
            size = min(size, len(members) - i)
            for p in members[i : i + size]:
                rows.append((tid, unit, p))
            tid += 1
            i += size
    return pd.DataFrame(rows, columns=["team_id", "unit_code", "police_no"])


MODELS = {"bodycam": ["DSJ-V7", "DSJ-T9", "DSJ-YT5"], "camera": ["FDR-AX45 执法摄像机"], "phone": ["执法终端 PDA-H6"]}
PREFIX = {"bodycam": "ZFY", "camera": "SXJ", "phone": "YDJ"}


def build_devices(
    rng: np.random.Generator, units: pd.DataFrame, officers: pd.DataFrame, teams: pd.DataFrame, start: int = YEAR_START
) -> Org:
    """Devices: one held by every station officer (from before ``start``, the demo's first day), stand-in spares
    per station, county spares."""
    dev_rows: list[list] = []  # device_sn, kind, model, unit_code, status, status_since, purchased_at
    asg_rows: list[tuple] = []
    main: dict[str, str] = {}
    spares: dict[str, list[str]] = {}
    counters: dict[str, int] = {}

    def new_device(unit: str, kind: str, status: str, since: int) -> str:
        county4 = unit[2:6]
        counters[county4] = counters.get(county4, 0) + 1
        sn = f"{PREFIX[kind]}{county4}{counters[county4]:05d}"
        bought = since - int(rng.integers(30, 900)) * DAY
        dev_rows.append(
            [
                sn,
                kind,
                str(rng.choice(MODELS[kind])),
                unit,
                status,
                since,
                str(np.datetime64(bought, "s").astype("datetime64[D]")),
            ]
        )
        return sn

    holders = officers[(officers["active"] == 1) & (officers["unit_code"].str[6:8] != "00")]
    for unit, grp in holders.groupby("unit_code", sort=True):
        for p in grp["police_no"]:
            r = rng.random()
            kind = "bodycam" if r < 0.92 else ("phone" if r < 0.97 else "camera")
            frm = start - int(rng.integers(20, 400)) * DAY + int(rng.integers(8, 18)) * HOUR
            sn = new_device(unit, kind, "in_use", frm)
            asg_rows.append((sn, p, frm, NULL_T))
            main[p] = sn
        kinds = ["phone", "camera"] + (["bodycam"] if rng.random() < 0.5 else [])
        spares[unit] = [new_device(unit, k, "spare", start - int(rng.integers(10, 200)) * DAY) for k in kinds]
    for unit in units.loc[units["level"] == "county", "unit_code"]:
        new_device(unit, "bodycam", "spare", start - int(rng.integers(10, 200)) * DAY)
    devices = pd.DataFrame(
        dev_rows, columns=["device_sn", "kind", "model", "unit_code", "status", "status_since", "purchased_at"]
    )
    assignments = pd.DataFrame(asg_rows, columns=["device_sn", "police_no", "from_at", "to_at"])
    return Org(
        units,
        officers,
        teams,
        devices,
        assignments,
        pd.DataFrame(),
        main,
        pd.DataFrame(columns=["police_no", "old_sn", "new_sn", "at", "old_status"]),
        spares,
    )


def build_admins(rng: np.random.Generator, org: Org, start: int = YEAR_START) -> list[str]:
    """Unit admins (Art. 31) for every unit; a few stations only have a closed row. Returns those stations."""
    rows = []
    offs = org.officers
    missing: list[str] = []
    stations = org.units.loc[org.units["level"] == "station", "unit_code"].tolist()
    n_missing = max(1, round(len(stations) * 0.05))
    missing = sorted(rng.choice(stations, size=n_missing, replace=False).tolist())
    for unit, level in zip(org.units["unit_code"], org.units["level"], strict=True):
        staff = offs[(offs["unit_code"] == unit) & (offs["active"] == 1)]
        pref = staff[staff["role"].isin(["admin", "equipment"])]
        admin = (pref if len(pref) else staff)["police_no"].iloc[0]
        frm = start - int(rng.integers(60, 700)) * DAY
        if unit in missing:
            rows.append((unit, admin, frm, EVAL_T - int(rng.integers(20, 120)) * DAY))
            continue
        if level == "station" and rng.random() < 0.3:
            # handover during the year: a closed row, then the current one
            other = staff["police_no"].iloc[-1]
            mid = YEAR_START + int(rng.integers(30, 300)) * DAY
            rows.append((unit, other, frm, mid))
            rows.append((unit, admin, mid, NULL_T))
        else:
            rows.append((unit, admin, frm, NULL_T))
    org.admins = pd.DataFrame(rows, columns=["unit_code", "police_no", "from_at", "to_at"])
    return missing


def officer_rows(org: Org) -> pd.DataFrame:
    return org.officers[["police_no", "name", "unit_code", "kind", "leader", "active"]]


def demo_users(org: Org) -> dict[str, tuple[str, str, str]]:
    """username -> (police_no, role, unit_code) for users.yaml."""
    offs = org.officers
    city = org.units.loc[org.units["level"] == "city", "unit_code"].iloc[0]  # the city's top unit
    first_county = org.units.loc[org.units["level"] == "county", "unit_code"].iloc[0]

    def pick(unit: str, role: str) -> str:
        return offs[(offs["unit_code"] == unit) & (offs["role"] == role)]["police_no"].iloc[0]

    station = sorted(org.units.loc[org.units["parent_code"] == first_county, "unit_code"])[0]
    # the officer (民警, issue 18): the station's first police officer on patrol by number (events and findings)
    patrol = offs[(offs["unit_code"] == station) & (offs["role"] == "patrol") & (offs["kind"] == "police")]
    return {
        "leader": (pick(city, "leader"), "leader", city),
        "legal": (pick(city, "legal"), "legal", city),
        "equipment": (pick(city, "equipment"), "equipment", city),
        "it": (pick(city, "it"), "it", city),
        "county": (pick(first_county, "admin"), "unit_admin", first_county),
        "station": (pick(station, "admin"), "unit_admin", station),
        "officer": (sorted(patrol["police_no"])[0], "officer", station),
    }


__all__ = ["Org", "build_units", "build_officers", "build_teams", "build_devices", "build_admins", "ts"]
