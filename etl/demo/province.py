"""``python -m etl demo --scale province [--cities N]``: N cities of demo data pooled under one province (issue 18).

The province root is 山西省公安厅 (``140000000000``, level ``province``); below it N city bureaus, each with
the unit tree ``build_units`` makes for one city (the same 12 county-level bureaus and station counts, so
that every city is the same size and 10 cities are 10 times one), but with the city's own division codes and
names: Changzhi (``1404``, the demo's home city) first, then the other Shanxi cities in code order.  Cities
with fewer than 12 county-level divisions are filled up with city-level branch bureaus (codes ``XXXX71`` on).

Each city is one ``build`` of the base scale (``city``, or ``small`` for tests) with a seed of its own (the
first city the demo's seed, so that its data are those of ``--scale city``), then written and freed before
the next: the output files are appended to city by city (CSV without a second header, SQLite tables, one
ledger workbook per unit anyway), and peak memory is that of one city.  Keys do not collide across cities:
unit codes, incident, case, action, document and delivery numbers and device serials carry the division code
already; police numbers are renumbered where an earlier city used them (``PoliceNumbers``); clip, access log
and interruption report ids are moved into a block per city (``namespace``).  The service windows (one small
workbook) are written once at the end, and so are the province's own staff and the users file.

Demo accounts: ``leader``, ``legal``, ``equipment``, ``it`` of the province department (the whole province),
and of the first city ``city_leader`` and ``city_legal`` (its leader and legal office: that city), ``county``, ``station`` and ``officer``
as in a city demo.  The manifest is the concatenation of the cities' manifests (no rule spans two cities).
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from etl.demo import EVALUATION_DATE, build, output, sources_yaml, users_yaml, write_tables
from etl.demo.common import DAY, NULL_T, span_start
from etl.demo.manifest import build_manifest
from etl.demo.org import COUNTIES, SCALES, _names
from etl.errors import ConfigError
from etl.memory import release_freed

PROVINCE = ("140000000000", "山西省公安厅")
MAX_CITIES = 11
# Shanxi's cities (4-digit division prefix, name) and their county-level divisions (6-digit code, name), in code
# order; Changzhi's bureaus are the demo's own (org.COUNTIES).
CITIES: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("1404", "长治市", []),
    (
        "1401",
        "太原市",
        [
            ("140105", "小店区"),
            ("140106", "迎泽区"),
            ("140107", "杏花岭区"),
            ("140108", "尖草坪区"),
            ("140109", "万柏林区"),
            ("140110", "晋源区"),
            ("140121", "清徐县"),
            ("140122", "阳曲县"),
            ("140123", "娄烦县"),
            ("140181", "古交市"),
        ],
    ),
    (
        "1402",
        "大同市",
        [
            ("140212", "新荣区"),
            ("140213", "平城区"),
            ("140214", "云冈区"),
            ("140215", "云州区"),
            ("140221", "阳高县"),
            ("140222", "天镇县"),
            ("140223", "广灵县"),
            ("140224", "灵丘县"),
            ("140225", "浑源县"),
            ("140226", "左云县"),
        ],
    ),
    (
        "1403",
        "阳泉市",
        [("140302", "城区"), ("140303", "矿区"), ("140311", "郊区"), ("140321", "平定县"), ("140322", "盂县")],
    ),
    (
        "1405",
        "晋城市",
        [
            ("140502", "城区"),
            ("140521", "沁水县"),
            ("140522", "阳城县"),
            ("140524", "陵川县"),
            ("140525", "泽州县"),
            ("140581", "高平市"),
        ],
    ),
    (
        "1406",
        "朔州市",
        [
            ("140602", "朔城区"),
            ("140603", "平鲁区"),
            ("140621", "山阴县"),
            ("140622", "应县"),
            ("140623", "右玉县"),
            ("140681", "怀仁市"),
        ],
    ),
    (
        "1407",
        "晋中市",
        [
            ("140702", "榆次区"),
            ("140703", "太谷区"),
            ("140721", "榆社县"),
            ("140722", "左权县"),
            ("140723", "和顺县"),
            ("140724", "昔阳县"),
            ("140725", "寿阳县"),
            ("140727", "祁县"),
            ("140728", "平遥县"),
            ("140729", "灵石县"),
            ("140781", "介休市"),
        ],
    ),
    (
        "1408",
        "运城市",
        [
            ("140802", "盐湖区"),
            ("140821", "临猗县"),
            ("140822", "万荣县"),
            ("140823", "闻喜县"),
            ("140824", "稷山县"),
            ("140825", "新绛县"),
            ("140826", "绛县"),
            ("140827", "垣曲县"),
            ("140828", "夏县"),
            ("140829", "平陆县"),
            ("140830", "芮城县"),
            ("140881", "永济市"),
        ],
    ),
    (
        "1409",
        "忻州市",
        [
            ("140902", "忻府区"),
            ("140921", "定襄县"),
            ("140922", "五台县"),
            ("140923", "代县"),
            ("140924", "繁峙县"),
            ("140925", "宁武县"),
            ("140926", "静乐县"),
            ("140927", "神池县"),
            ("140928", "五寨县"),
            ("140929", "岢岚县"),
            ("140930", "河曲县"),
            ("140981", "原平市"),
        ],
    ),
    (
        "1410",
        "临汾市",
        [
            ("141002", "尧都区"),
            ("141021", "曲沃县"),
            ("141022", "翼城县"),
            ("141023", "襄汾县"),
            ("141024", "洪洞县"),
            ("141025", "古县"),
            ("141026", "安泽县"),
            ("141027", "浮山县"),
            ("141028", "吉县"),
            ("141029", "乡宁县"),
            ("141030", "大宁县"),
            ("141081", "侯马市"),
        ],
    ),
    (
        "1411",
        "吕梁市",
        [
            ("141102", "离石区"),
            ("141121", "文水县"),
            ("141122", "交城县"),
            ("141123", "兴县"),
            ("141124", "临县"),
            ("141125", "柳林县"),
            ("141126", "石楼县"),
            ("141127", "岚县"),
            ("141128", "方山县"),
            ("141129", "中阳县"),
            ("141130", "交口县"),
            ("141181", "孝义市"),
        ],
    ),
]
# city-level branch bureaus that fill a city up to the 12 county-level bureaus of the demo's tree (codes XXXX71...)
BRANCHES = [
    "经济技术开发区分局",
    "高新技术产业开发区分局",
    "交通警察支队",
    "巡特警支队",
    "治安管理支队",
    "机场分局",
    "铁路分局",
]
# id blocks per city (the first city keeps its ids): clip V + 9 digits, access log L + 8, reports BG + 8
ID_BLOCKS = {"clip_id": ("V", 9, 50_000_000), "log_id": ("L", 8, 5_000_000), "report_id": ("BG", 8, 5_000_000)}
# the province department's staff (role as org.build_officers names them)
HQ_ROLES = ["leader", "leader", "legal", "legal", "equipment", "it", "staff"]


def bureau_name(city: str, division: str) -> str:
    """The public security bureau of a county-level division: 城区 / 小店区 -> 太原市公安局小店分局, 清徐县 -> 清徐县公安局."""
    if division.endswith("区"):
        return f"{city}公安局{division[:-1] if len(division) > 2 else division}分局"
    return f"{division}公安局"


class PoliceNumbers:
    """Police numbers unique in the province: an officer keeps the number its city drew unless an earlier city
    (or an earlier officer) holds it; then it gets a fresh one of the same form (6 digits, or F + 5 digits)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 18, 4])
        self.used: set[str] = {"009999"}  # the ledgers' made-up holder (media.ledgers): nobody's number

    def fresh(self, auxiliary: bool) -> str:
        while True:
            x = int(self.rng.integers(0, 100_000 if auxiliary else 1_000_000))
            no = f"F{x:05d}" if auxiliary else f"{x:06d}"
            if no not in self.used:
                self.used.add(no)
                return no

    def renumber(self, officers: pd.DataFrame) -> pd.DataFrame:
        nos = officers["police_no"].tolist()
        for i, no in enumerate(nos):
            if no in self.used:
                nos[i] = self.fresh(no.startswith("F"))
            else:
                self.used.add(no)
        return officers.assign(police_no=nos)


@dataclass
class City:
    """One city of the province: the ``build`` hooks that give it its codes, names and police numbers."""

    index: int
    prefix: str  # 4-digit division code, e.g. 1401
    name: str  # 太原市
    bureaus: list[tuple[str, str]]  # 12 county-level (6-digit code, bureau name), in org.COUNTIES order
    seed: int
    numbers: PoliceNumbers = field(repr=False)

    @property
    def code(self) -> str:
        return f"{self.prefix}00000000"

    def units(self, units: pd.DataFrame) -> pd.DataFrame:
        """``build_units`` of the demo's city, moved to this city: codes, names; the city under the province."""
        moved = {c[0]: (c[1], b[0], b[1]) for c, b in zip(COUNTIES, self.bureaus, strict=True)}

        def code(c: object) -> object:
            if not isinstance(c, str):
                return c
            return self.code if c.endswith("00000000") else moved[c[:6]][1] + c[6:]

        def name(c: str, n: str, level: str) -> str:
            if level == "city":
                return f"{self.name}公安局"
            old, _code, new = moved[c[:6]]
            if not n.startswith(old):
                raise ValueError(f"{c} {n}: not a unit of {old}")
            return new + n[len(old) :]

        out = units.copy()
        levels = units["level"].tolist()
        out["name"] = [name(c, n, lv) for c, n, lv in zip(units["unit_code"], units["name"], levels, strict=True)]
        out["unit_code"] = [code(c) for c in units["unit_code"]]
        out["parent_code"] = [
            PROVINCE[0] if lv == "city" else code(p) for p, lv in zip(units["parent_code"], levels, strict=True)
        ]
        return out

    def officers(self, officers: pd.DataFrame) -> pd.DataFrame:
        return self.numbers.renumber(officers)


def city_seed(seed: int, prefix: str, index: int) -> int:
    """The first city builds with the demo's seed (its data are ``--scale city``'s); the others with their own."""
    if index == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{prefix}:province".encode()).digest()[:8], "little")


def cities_of(n: int, seed: int) -> list[City]:
    if not isinstance(n, int) or not 1 <= n <= MAX_CITIES:
        raise ConfigError(f"省级演示的城市数应为 1 至 {MAX_CITIES}：{n}")
    numbers = PoliceNumbers(seed)
    out = []
    for i, (prefix, name, divisions) in enumerate(CITIES[:n]):
        if not divisions:
            bureaus = [(c[0], c[1]) for c in COUNTIES]
        else:
            real = [(code, bureau_name(name, div)) for code, div in divisions[: len(COUNTIES)]]
            extra = [(f"{prefix}{71 + k}", f"{name}公安局{b}") for k, b in enumerate(BRANCHES)]
            bureaus = (real + extra)[: len(COUNTIES)]
        out.append(City(i, prefix, name, bureaus, city_seed(seed, prefix, i), numbers))
    return out


def _shift(values: pd.Series, prefix: str, width: int, offset: int) -> pd.Series:
    num = values.str[len(prefix) :].astype(np.int64) + offset
    return prefix + num.astype(str).str.zfill(width)


def namespace(d: dict, index: int) -> None:
    """Move the city's clip, access log and report ids into its own block (the first city keeps its ids)."""
    for key, (prefix, _width, block) in ID_BLOCKS.items():
        frame = {"clip_id": d["clips"], "log_id": d["access_log"], "report_id": d["reports"]}[key]
        if len(frame) and int(frame[key].str[len(prefix) :].astype(np.int64).max()) >= block:
            raise ConfigError(f"演示数据过大：{key} 超出每市编号区间 {block}")
    if index == 0:
        return
    prefix, width, block = ID_BLOCKS["clip_id"]
    old = d["clips"]["clip_id"]
    d["clips"]["clip_id"] = _shift(old, prefix, width, index * block)
    moved = dict(zip(old.to_numpy(), d["clips"]["clip_id"].to_numpy(), strict=True))
    log = d["access_log"]
    log["clip_id"] = log["clip_id"].map(moved)
    prefix, width, block = ID_BLOCKS["log_id"]
    log["log_id"] = _shift(log["log_id"], prefix, width, index * block)
    prefix, width, block = ID_BLOCKS["report_id"]
    d["reports"]["report_id"] = _shift(d["reports"]["report_id"], prefix, width, index * block)
    d["interruption_reports"] = d["reports"]
    for key in ("hash_ids", "missing_ids", "video_ids"):
        d[key] = {moved[c] for c in d[key]}


def build_city(base: str, city: City, years: int = 1) -> dict:
    """One city of the province: ``build`` with the city's hooks, its ids moved into its blocks."""
    d = build(base, city.seed, years, city=city)
    namespace(d, city.index)
    return d


def province_staff(seed: int, numbers: PoliceNumbers, base: str, years: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The province department's officers (police numbers no city holds) and its unit administrator."""
    rng = np.random.default_rng([seed, 18, 40])
    roles = HQ_ROLES + (["staff"] * 12 if base == "city" else [])
    staff = pd.DataFrame(
        {
            "police_no": [numbers.fresh(False) for _ in roles],
            "name": _names(rng, len(roles)),
            "unit_code": PROVINCE[0],
            "kind": "police",
            "leader": [int(r == "leader") for r in roles],
            "active": 1,
            "role": roles,
        }
    )
    since = span_start(years) - int(rng.integers(60, 700)) * DAY
    admin = staff.loc[staff["role"] == "equipment", "police_no"].iloc[0]
    admins = pd.DataFrame([(PROVINCE[0], admin, since, NULL_T)], columns=["unit_code", "police_no", "from_at", "to_at"])
    return staff, admins


def _clear(out: Path) -> None:
    for name in ("media", "cases", "dispatch", "windows", "ledgers"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("org.sqlite", "media.sqlite", "manifest.csv"):
        (out / name).unlink(missing_ok=True)


def generate_province(
    out: Path, cities: int = 10, base: str = "city", seed: int = 2026, media: bool = True, years: int = 1
) -> str:
    """Write the province demo into ``out`` city by city (replacing a previous demo there); a Chinese summary."""
    if base not in SCALES:
        raise ConfigError(f"未知的演示规模：{base}（可选 small、city）")
    t0 = time.perf_counter()
    plan = cities_of(cities, seed)
    out = Path(out)
    _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    root = pd.DataFrame(
        [(PROVINCE[0], PROVINCE[1], None, "province")], columns=["unit_code", "name", "parent_code", "level"]
    )
    output.write_sqlite(out / "org.sqlite", {"org_units": root}, append=True)
    windows: list[pd.DataFrame] = []
    counts = dict.fromkeys(("units", "officers", "devices", "onsite", "cases", "clips", "videos", "manifest"), 0)
    counts["units"] = 1
    first: dict = {}
    for city in plan:
        d = build_city(base, city, years)
        integrity = write_tables(out, d, city.seed, media, append=True)
        windows.append(d["service_windows"])
        manifest = build_manifest(d, integrity)
        manifest.to_csv(out / "manifest.csv", mode="a", header=city.index == 0, index=False, lineterminator="\n")
        inc = d["incidents"]
        counts["units"] += len(d["org_units"])
        counts["officers"] += len(d["officers"])
        counts["devices"] += len(d["devices"])
        counts["onsite"] += int(((inc["on_site"] == 1) & (inc["arrived_at"] != NULL_T)).sum())
        counts["cases"] += len(d["cases"])
        counts["clips"] += len(d["clips"])
        counts["videos"] += len(d["video_ids"])
        counts["manifest"] += len(manifest)
        if city.index == 0:
            staff_of = d["officers"].loc[d["officers"]["unit_code"] == city.code]
            leader = staff_of.loc[staff_of["role"] == "leader", "police_no"].iloc[0]
            legal = staff_of.loc[staff_of["role"] == "legal", "police_no"].iloc[0]
            users = {"city_leader": (leader, "leader", city.code), "city_legal": (legal, "legal", city.code)}
            users.update({u: d["users"][u] for u in ("county", "station", "officer")})
            names = d["officers"].loc[d["officers"]["police_no"].isin([u[0] for u in users.values()])]
            first = {"users": users, "officers": names[["police_no", "name"]].copy()}
        del d, manifest, inc
        gc.collect()
        release_freed()

    staff, admins = province_staff(seed, plan[0].numbers, base, years)
    output.write_sqlite(out / "org.sqlite", {"officers": staff}, append=True)
    output.write_sqlite(out / "media.sqlite", {"unit_admins": admins}, append=True)
    counts["officers"] += len(staff)
    (out / "windows").mkdir(exist_ok=True)
    output.write_xlsx(out / "windows" / "service_windows.xlsx", pd.concat(windows, ignore_index=True), "受理窗口")
    output.write_yaml(out / "sources.yaml", sources_yaml(media))
    marker = {"sources_sha256": hashlib.sha256((out / "sources.yaml").read_bytes()).hexdigest()}

    def hq(role: str) -> str:
        return staff.loc[staff["role"] == role, "police_no"].iloc[0]

    users = {r: (hq(r), r, PROVINCE[0]) for r in ("leader", "legal", "equipment", "it")}
    users.update(first["users"])
    people = pd.concat([staff[["police_no", "name"]], first["officers"]], ignore_index=True)
    output.write_yaml(out / "users.yaml", {"demo": marker, **users_yaml({"officers": people, "users": users}, seed)})
    secs = time.perf_counter() - t0
    media_note = f"（含媒体文件，其中可播放视频 {counts['videos']} 个）" if media else "（未生成媒体文件）"
    names = "、".join(c.name for c in plan)
    return (
        f"演示数据已生成：{out}（规模 province：{PROVINCE[1]}下 {len(plan)} 个市（{names}），每市 {base} 规模，"
        f"{years} 年，种子 {seed}，评估日 {EVALUATION_DATE}）\n"
        f"单位 {counts['units']} 个，人员 {counts['officers']} 人，设备 {counts['devices']} 台，"
        f"现场执法 {counts['onsite']} 起，案件 {counts['cases']} 件，视音频 {counts['clips']} 条"
        f"{media_note}，预期问题 {counts['manifest']} 条，用时 {secs:.1f} 秒"
    )


__all__ = ["PROVINCE", "CITIES", "City", "PoliceNumbers", "build_city", "cities_of", "generate_province", "namespace"]
