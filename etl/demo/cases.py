"""Administrative cases: actions, documents and deliveries, anchored on the teams' timelines.

A case starts from an on-site event (its on-scene measures happen inside the
event window) or from a visit (a complaint, a report, an assignment ... followed
by an on-site investigation).  Measures that need a recording later on
(hearings, removal of obstructions, restoration) use a later patrol slot of the
same team, so the recording of one slot never overlaps another slot.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.demo.common import ACTIONS, DAY, DELIVERY_NEEDS, HORIZON, HOUR, NULL_T, SERVED, SIGNATURE_REQUIRED
from etl.demo.org import Org
from etl.demo.timeline import EVENT, PATROL, VISIT, Timeline

# name, procedure, on-scene actions, later actions, titles
TEMPLATES = [
    ("simple_traffic", "simple", ["inspection"], ["statement_defence"], ["违法停车", "机动车违反禁令标志"], 14),
    ("simple_refusal", "simple", ["inspection", "refusal"], ["statement_defence"], ["拒不配合检查", "违反交通信号"], 3),
    ("simple_plain", "simple", [], ["statement_defence"], ["噪音扰民", "违反规定燃放烟花爆竹"], 8),
    (
        "fight",
        "general",
        ["inspection"],
        ["inquiry", "inquiry", "evidence_collection", "rights_notification", "statement_defence"],
        ["殴打他人", "故意损毁财物", "寻衅滋事"],
        18,
    ),
    (
        "seize",
        "general",
        ["inspection", "seize", "sampling"],
        ["inquiry", "appraisal", "evidence_preservation", "rights_notification", "statement_defence"],
        ["无证经营", "销售假冒商品", "非法储存烟花爆竹"],
        9,
    ),
    (
        "seal",
        "general",
        ["survey", "seal"],
        ["inquiry", "rights_notification", "statement_defence", "+hearing"],
        ["违规经营娱乐场所", "消防安全隐患"],
        5,
    ),
    (
        "obstruct",
        "general",
        ["restrict_liberty", "obstruction"],
        ["inquiry", "rights_notification", "statement_defence"],
        ["阻碍执行职务", "妨害公务"],
        5,
    ),
    (
        "mass",
        "general",
        ["mass_incident"],
        ["inquiry", "inquiry", "rights_notification", "statement_defence"],
        ["聚众扰乱公共秩序"],
        3,
    ),
    (
        "freeze",
        "general",
        ["inspection"],
        ["inquiry", "evidence_collection", "freeze", "rights_notification", "statement_defence"],
        ["赌博", "组织赌博"],
        5,
    ),
    (
        "enforce",
        "general",
        ["inspection"],
        ["inquiry", "rights_notification", "statement_defence"],
        ["占道经营", "违法搭建妨碍通行", "擅自设置障碍物"],
        10,
    ),
    ("not_filed", "general", [], ["inquiry"], ["邻里纠纷", "合同纠纷"], 6),
]
WEIGHTS = np.array([t[5] for t in TEMPLATES], dtype=float) / sum(t[5] for t in TEMPLATES)
BASES = [
    "《中华人民共和国治安管理处罚法》第二十六条",
    "《中华人民共和国治安管理处罚法》第四十三条",
    "《中华人民共和国道路交通安全法》第九十条",
    "《中华人民共和国消防法》第六十条",
    "《中华人民共和国治安管理处罚法》第五十条",
]
PARTIES = ["张某", "李某", "王某某", "刘某", "赵某某", "陈某"]


@dataclass
class Cases:
    cases: pd.DataFrame
    case_officers: pd.DataFrame
    actions: pd.DataFrame
    documents: pd.DataFrame
    deliveries: pd.DataFrame
    slot_case: pd.DataFrame  # slot_id, case_no: recordings of that slot are tagged with the case


class _Draw:
    """Scalar draws from a numpy generator, buffered: the per-case loop makes millions of them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.buf: list[float] = []

    def random(self) -> float:
        if not self.buf:
            self.buf = self.rng.random(1 << 16).tolist()[::-1]
        return self.buf.pop()

    def integers(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi)."""
        return lo + int(self.random() * max(hi - lo, 1))

    def choice(self, seq, p=None):  # noqa: ANN001, ANN201
        if p is None:
            return seq[int(self.random() * len(seq))]
        return seq[min(bisect.bisect_right(np.cumsum(p).tolist(), self.random()), len(seq) - 1)]


class _Rows:
    def __init__(self) -> None:
        self.cases: list[tuple] = []
        self.officers: list[tuple] = []
        self.actions: list[tuple] = []
        self.docs: list[list] = []
        self.deliveries: list[tuple] = []
        self.slot_case: list[tuple] = []


def build_cases(rng: np.random.Generator, org: Org, tl: Timeline, n_cases: int) -> Cases:
    slots = tl.slots
    ev = tl.incidents
    onsite = ev[(ev["on_site"] == 1) & (ev["arrived_at"] != NULL_T)]
    visits = slots[slots["kind"] == VISIT]
    n_event_cases = int(np.clip(n_cases - len(visits), 0, len(onsite)))
    ev_pick = np.sort(rng.choice(len(onsite), size=n_event_cases, replace=False))
    anchors = pd.concat(
        [
            pd.DataFrame(
                {
                    "slot_id": onsite["slot_id"].to_numpy()[ev_pick],
                    "incident_no": onsite["incident_no"].to_numpy()[ev_pick],
                }
            ),
            pd.DataFrame({"slot_id": visits["slot_id"].to_numpy(), "incident_no": None}),
        ]
    ).merge(slots[["slot_id", "team_id", "unit_code", "start", "end", "kind"]], on="slot_id")
    anchors = anchors.sort_values("start", kind="stable").reset_index(drop=True)

    members = org.teams.groupby("team_id")["police_no"].apply(list).to_dict()
    patrol = slots[slots["kind"] == PATROL]
    free: dict[int, list[int]] = {}
    free_id: dict[int, list[int]] = {}
    for tid, grp in patrol.groupby("team_id"):
        free[tid] = grp["start"].tolist()
        free_id[tid] = grp["slot_id"].tolist()
    slot_end = dict(zip(slots["slot_id"], slots["end"], strict=True))
    offs = org.officers
    leaders = offs[offs["leader"] == 1].groupby("unit_code")["police_no"].first().to_dict()
    legal = offs[offs["role"] == "legal"].groupby("unit_code")["police_no"].first().to_dict()
    parent = dict(zip(org.units["unit_code"], org.units["parent_code"], strict=True))

    out = _Rows()
    n = len(anchors)
    tpl_idx = rng.choice(len(TEMPLATES), size=n, p=WEIGHTS)
    seq_per_unit: dict[str, int] = {}
    draw = _Draw(rng)
    for i, a in enumerate(anchors.to_dict("records")):
        unit = a["unit_code"]
        seq_per_unit[unit] = seq_per_unit.get(unit, 0) + 1
        case_no = f"A{unit}{pd.Timestamp(int(a['start']), unit='s'):%Y%m}{seq_per_unit[unit]:04d}"
        tpl = TEMPLATES[tpl_idx[i]]
        if a["kind"] == EVENT and tpl[0] == "not_filed":
            tpl = TEMPLATES[3]
        ctx = _Ctx(
            draw,
            out,
            case_no,
            unit,
            members[a["team_id"]],
            leaders,
            legal,
            parent,
            free.get(a["team_id"], []),
            free_id.get(a["team_id"], []),
            slot_end,
        )
        ctx.build(tpl, a)

    cases = pd.DataFrame(
        out.cases,
        columns=[
            "case_no",
            "unit_code",
            "title",
            "procedure",
            "source",
            "is_major",
            "emergency_start",
            "registered_at",
            "started_at",
            "start_approved_at",
            "filed",
            "decided_at",
            "closed_at",
            "enforcement_power",
            "updated_at",
            "incident_no",
        ],
    )
    return Cases(
        cases=cases,
        case_officers=pd.DataFrame(out.officers, columns=["case_no", "police_no", "role"]),
        actions=pd.DataFrame(
            out.actions,
            columns=[
                "action_id",
                "case_no",
                "action_type",
                "started_at",
                "ended_at",
                "police_no",
                "updated_at",
                "slot_id",
            ],
        ),
        documents=pd.DataFrame(
            out.docs,
            columns=[
                "doc_id",
                "case_no",
                "action_id",
                "doc_type",
                "created_at",
                "drafter_no",
                "reviewer_no",
                "approver_no",
                "legal_basis",
                "party_signed",
                "party_refused",
                "officer_signed",
                "witness_signed",
                "updated_at",
            ],
        ),
        deliveries=pd.DataFrame(
            out.deliveries,
            columns=[
                "delivery_id",
                "doc_id",
                "method",
                "delivered_at",
                "receipt_signed",
                "postal_receipt",
                "reason",
                "entrustee",
                "note",
            ],
        ),
        slot_case=pd.DataFrame(out.slot_case, columns=["slot_id", "case_no"]),
    )


class _Ctx:
    """Builds one case; all randomness from the shared generator, in a fixed order."""

    def __init__(self, rng, out, case_no, unit, team, leaders, legal, parent, free, free_id, slot_end):  # noqa: ANN001
        self.rng, self.out, self.case_no, self.unit, self.team = rng, out, case_no, unit, team
        self.leaders, self.legal, self.parent = leaders, legal, parent
        self.free, self.free_id, self.slot_end = free, free_id, slot_end
        self.n_act = 0
        self.n_doc = 0
        self.last_update = 0

    # -- helpers -------------------------------------------------------------
    def r(self) -> float:
        return float(self.rng.random())

    def officer(self) -> str:
        return self.team[self.rng.integers(0, len(self.team))]

    def action(self, code: str, start: int, end: int, slot_id: int = -1) -> str:
        self.n_act += 1
        aid = f"{self.case_no}-X{self.n_act:02d}"
        self.out.actions.append((aid, self.case_no, code, start, end, self.officer(), end + 600, slot_id))
        self.last_update = max(self.last_update, end + 600)
        for doc_type in ACTIONS[code][0]:
            if code == "inspection" and self.r() < 0.35:
                continue  # a full recording stands in for the 检查笔录 (checked against the clip in the manifest)
            if self.r() < 0.025:
                continue  # injected: DOC-MISSING
            self.doc(doc_type, end + int(self.rng.integers(60, 1800)), aid)
        return aid

    def doc(self, doc_type: str, created: int, action_id: str | None = None) -> str:
        self.n_doc += 1
        did = f"{self.case_no}-D{self.n_doc:02d}"
        drafter = self.officer()
        row = [
            did,
            self.case_no,
            action_id,
            doc_type,
            created,
            drafter,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            created + 300,
        ]
        if doc_type in SIGNATURE_REQUIRED:
            u = self.r()
            if u < 0.93:
                row[9:13] = [1, 0, 1, None]
            elif u < 0.975:
                row[9:13] = [0, 1, 1, 1]  # refused, officer and witness signed
            elif u < 0.99:
                row[9:13] = [0, 0, 1, 0]  # injected: no signature at all
            else:
                row[9:13] = [0, 1, 1, 0]  # injected: refusal without a witness
        if doc_type in (
            "penalty_decision",
            "on_spot_decision",
            "seal_seize_decision",
            "enforcement_decision",
            "freeze_decision",
            "not_filed_notice",
            "start_approval",
            "legal_review",
        ):
            county = self.parent.get(self.unit) or self.unit
            row[6] = self.legal.get(county, self.legal.get("140400000000"))
            row[7] = self.leaders.get(self.unit) if doc_type != "penalty_decision" else self.leaders.get(county)
            row[8] = BASES[int(self.rng.integers(0, len(BASES)))]
            if doc_type == "penalty_decision" and self.r() < 0.03:
                row[[6, 7, 8][int(self.rng.integers(0, 3))]] = None  # injected: DECISION-RECORD
        self.out.docs.append(row)
        self.last_update = max(self.last_update, created + 300)
        if doc_type in SERVED:
            self.deliver(did, created, on_spot=doc_type == "on_spot_decision")
        return did

    def deliver(self, doc_id: str, created: int, on_spot: bool = False) -> int | None:
        """Serve a document; returns the delivery time (None when not served: injected)."""
        if self.r() < 0.015:
            return None  # injected: DELIVERY (no delivery at all)
        if on_spot:
            method = "direct"
        else:
            method = str(
                self.rng.choice(
                    ["direct", "left", "mail", "entrusted", "public_notice"], p=[0.68, 0.08, 0.14, 0.05, 0.05]
                )
            )
        at = created + (int(self.rng.integers(60, 900)) if on_spot else int(self.rng.integers(HOUR, 6 * DAY)))
        at = min(at, max(created + 60, HORIZON))
        vals = {
            "receipt_signed": 1 if method in ("direct", "entrusted") else 0,
            "postal_receipt": 1 if method == "mail" else 0,
            "reason": {
                "entrusted": "当事人在外地务工，委托其亲属转交",
                "public_notice": "当事人下落不明，其他方式无法送达",
            }.get(method),
            "entrustee": "当事人之兄，电话139****2817" if method == "entrusted" else None,
            "note": {
                "left": "当事人拒绝签收，已邀请社区工作人员见证并留置送达",
                "public_notice": "已在公安局网站及住所地张贴公告",
            }.get(method),
        }
        if self.r() < 0.03:
            need = DELIVERY_NEEDS[method]
            field = need[int(self.rng.integers(0, len(need)))]
            vals[field] = 0 if field in ("receipt_signed", "postal_receipt") else None  # injected: DELIVERY
        self.out.deliveries.append(
            (
                f"{doc_id}-S1",
                doc_id,
                method,
                at,
                vals["receipt_signed"],
                vals["postal_receipt"],
                vals["reason"],
                vals["entrustee"],
                vals["note"],
            )
        )
        self.last_update = max(self.last_update, at)
        return at

    def patrol_slot(self, after: int) -> tuple[int, int, int] | None:
        k = bisect.bisect_right(self.free, after)
        if k >= len(self.free):
            return None
        start, sid = self.free.pop(k), self.free_id.pop(k)
        return sid, start, self.slot_end[sid]

    # -- the case ---------------------------------------------------------------
    def build(self, tpl: tuple, a: dict) -> None:  # noqa: C901
        rng = self.rng
        name, procedure, onsite, later, titles, _ = tpl
        title = titles[int(rng.integers(0, len(titles)))]
        s0, e0 = int(a["start"]), int(a["end"])
        from_event = a["kind"] == EVENT
        if from_event:
            source = "report" if self.r() < 0.6 else "ex_officio"
            registered = e0 + int(rng.integers(600, 5400))
        else:
            source = str(
                rng.choice(
                    ["ex_officio", "complaint", "report", "assigned", "transferred", "other"],
                    p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05],
                )
            )
            registered = s0 - int(rng.integers(HOUR, 5 * DAY))
        is_major = int(procedure == "general" and name != "not_filed" and self.r() < (0.3 if name == "seal" else 0.06))
        emergency = int(from_event and procedure == "general" and self.r() < 0.15)
        # program start and its approval
        if from_event:
            started = registered + int(rng.integers(60, 1800))
        else:
            started = registered + int(rng.integers(600, max(s0 - registered - 600, 1200)))
            started = min(started, s0 - 300)
        approved: int | None = None
        if procedure == "general":
            approved = (
                started + int(rng.integers(600, 20 * HOUR)) if emergency else started - int(rng.integers(300, 5 * HOUR))
            )
            if source == "ex_officio":
                u = self.r()
                if u < 0.02:
                    approved = None  # injected: START-APPROVAL (no approval)
                elif u < 0.04:
                    approved = started + (
                        int(rng.integers(25 * HOUR, 60 * HOUR)) if emergency else int(rng.integers(HOUR, 20 * HOUR))
                    )  # injected: too late
        self.out.slot_case.append((int(a["slot_id"]), self.case_no))
        for p, role in zip(self.team, ["handler"] + ["assistant"] * 3, strict=False):
            self.out.officers.append((self.case_no, p, role))
        self.doc("acceptance_register", registered)
        if approved is not None:
            self.doc("start_approval", approved)

        # on-scene measures inside the anchor slot, one after the other
        t = s0 + int(rng.integers(30, 120))
        room = max((e0 - 60 - t) // max(len(onsite), 1), 60)
        for code in onsite:
            d = int(rng.integers(min(120, room - 30), room)) if room > 150 else room // 2
            self.action(code, t, t + d, int(a["slot_id"]))
            t += room
        filed: int | None = 1
        decided: int | None = None
        closed: int | None = None
        enforcement_power = int(name == "enforce" and self.r() < 0.6)
        t = max(e0, started) + int(rng.integers(HOUR, 12 * HOUR))
        rights_at = None
        for code in later:
            if t > HORIZON - DAY:
                break
            if code.startswith("+"):
                code = code[1:]
                slot = self.patrol_slot(t + DAY)
                if slot is None or slot[2] > HORIZON - DAY:
                    continue
                sid, ps, pe = slot
                self.out.slot_case.append((sid, self.case_no))
                self.action(code, ps + 120, pe - 120, sid)
                t = pe + int(rng.integers(HOUR, DAY))
                continue
            if code == "rights_notification" and name != "not_filed" and self.r() < 0.02:
                continue  # injected: RIGHTS-NOTICE (no notification at all)
            d = int(rng.integers(900, 2 * HOUR))
            self.action(code, t, t + d)
            if code == "rights_notification":
                rights_at = t + d
            t += d + int(rng.integers(4 * HOUR, 3 * DAY))
        if name == "not_filed":
            filed = 0 if t < HORIZON - DAY else None
            if filed == 0 and not (source in ("complaint", "report", "assigned", "transferred") and self.r() < 0.1):
                if source in ("complaint", "report", "assigned", "transferred") or self.r() < 0.5:
                    self.doc("not_filed_notice", t)
                closed = t + DAY
        elif procedure == "simple":
            decided = e0 + int(rng.integers(300, 1800))
            if self.r() < 0.97:
                self.doc("on_spot_decision", decided)
            if self.r() < 0.97:
                self.doc("filing_record", decided + int(rng.integers(HOUR, 20 * HOUR)))
            closed = decided + DAY
        elif t < HORIZON - 2 * DAY:
            decided = min(t + int(rng.integers(DAY, 4 * DAY)), HORIZON - DAY)
            if is_major:
                u = self.r()
                if u < 0.85:
                    self.doc("legal_review", decided - int(rng.integers(0, 3 * DAY)) * (1 if self.r() < 0.9 else 0))
                elif u < 0.93:
                    self.doc("legal_review", decided + int(rng.integers(HOUR, DAY)))  # injected: review after
                self.doc("collective_discussion", decided - int(rng.integers(HOUR, DAY)))
                if name == "seal":
                    self.doc("expert_opinion", decided - int(rng.integers(DAY, 2 * DAY)))
            if rights_at is not None and self.r() < 0.01:
                # injected: RIGHTS-NOTICE (the notification produced after the decision)
                self.action("rights_notification", decided + HOUR, decided + 2 * HOUR)
            did = self.doc("penalty_decision", decided)
            served = [d for d in self.out.deliveries[-1:] if d[1] == did]
            closed = self._after_decision(name, decided, served[0][3] if served else None, enforcement_power)
        else:
            filed = None if self.r() < 0.5 else 1
        updated = max(self.last_update, registered + 600)
        if closed is not None and closed > HORIZON:
            closed = None
        self.out.cases.append(
            (
                self.case_no,
                self.unit,
                title,
                procedure,
                source,
                is_major,
                emergency,
                registered,
                started,
                NULL_T if approved is None else approved,
                NULL_T if filed is None else filed,
                NULL_T if decided is None else decided,
                NULL_T if closed is None else closed,
                enforcement_power,
                min(max(updated, closed or 0), HORIZON + 2 * DAY),
                a["incident_no"],
            )
        )

    def _after_decision(self, name: str, decided: int, delivered: int | None, power: int) -> int | None:
        rng = self.rng
        t = (delivered or decided) + int(rng.integers(5 * DAY, 25 * DAY))
        if name == "enforce" and t < HORIZON - 20 * DAY:
            self.action("urge", t, t + HOUR)
            t += int(rng.integers(10 * DAY, 15 * DAY))
            if power:
                kind = ["compulsory_execution", "remove_obstruction", "restore"][int(rng.integers(0, 3))]
                if kind == "compulsory_execution":
                    self.action(kind, t, t + 2 * HOUR)
                else:
                    slot = self.patrol_slot(t)
                    if slot is not None and slot[2] < HORIZON - DAY:
                        sid, ps, pe = slot
                        self.out.slot_case.append((sid, self.case_no))
                        self.action(kind, ps + 60, pe - 60, sid)
                        t = pe
            else:
                self.action("court_application", t, t + HOUR)
            t += int(rng.integers(DAY, 5 * DAY))
        if t >= HORIZON - DAY:
            return None
        if delivered is not None and self.r() < 0.05:
            return None  # injected: PERFORMANCE-CHECK (no check, case left open)
        self.action("performance_check", t, t + HOUR)
        return t + DAY
