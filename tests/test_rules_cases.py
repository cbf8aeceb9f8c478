"""Case rules (rules.md "Cases") through load_scenario: positive and negative fixtures per rule."""

from __future__ import annotations

from scenario import D1, P1, P2, P3, S1, S2, findings, keys, load_scenario, world


def _case(no: str, **kw) -> dict:
    return {"case_no": no, **kw}


def _action(
    aid: str, case: str, typ: str, start: str = "2026-02-10 10:00:00", end: str = "2026-02-10 10:30:00", **kw
) -> dict:
    return {"action_id": aid, "case_no": case, "action_type": typ, "started_at": start, "ended_at": end, **kw}


def _doc(did: str, case: str, typ: str, created: str = "2026-02-10 11:00:00", action: str | None = None, **kw) -> dict:
    return {"doc_id": did, "case_no": case, "doc_type": typ, "created_at": created, "action_id": action, **kw}


def _clip(cid: str, start: str, end: str, police_no: str | None = P1, **kw) -> dict:
    return {
        "clip_id": cid,
        "device_sn": kw.pop("device_sn", D1),
        "police_no": police_no,
        "started_at": start,
        "ended_at": end,
        **kw,
    }


def test_doc_missing_per_type_and_inspection_exception(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("A1"), _case("A2", unit_code=S2)],
            case_actions=[
                _action("X-INQ", "A1", "inquiry"),
                _action("X-EVC", "A1", "evidence_collection"),
                _action("X-INS-CLIP", "A1", "inspection"),
                _action("X-INS-NOCLIP", "A2", "inspection", police_no=P3),
                _action("X-OBS", "A1", "obstruction"),  # no documents required
                _action("X-FUT", "A1", "inquiry", start="2026-04-05 10:00:00", end="2026-04-05 10:30:00"),
            ],
            case_documents=[
                _doc("D-INQ", "A1", "inquiry_record", action="X-INQ", party_signed=1),
                _doc("D-EVN", "A1", "evidence_notice", action="X-EVC"),
                # right type but attached to another action: does not count
                _doc("D-EVL", "A1", "evidence_list", action="X-INQ", party_signed=1),
            ],
            clips=[_clip("C1", "2026-02-10 10:10:00", "2026-02-10 10:20:00")],
        ),
    )
    assert keys(eng, "DOC-MISSING") == {("X-EVC", "evidence_list"), ("X-INS-NOCLIP", "inspection_record")}
    f = findings(eng, "DOC-MISSING").set_index("action_id")
    assert f.loc["X-EVC", "article"] == "第十三条" and f.loc["X-EVC", "unit_code"] == S1
    assert f.loc["X-INS-NOCLIP", "unit_code"] == S2 and f.loc["X-EVC", "case_no"] == "A1"
    assert str(f.loc["X-EVC", "occurred_at"]) == "2026-02-10 10:00:00"
    assert "调取证据清单" in f.loc["X-EVC", "detail"] and "A1" in f.loc["X-EVC", "detail"]
    assert f.loc["X-EVC", "doc_type"] == "evidence_list"


def test_av_measure_supporting_clip(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("A1"), _case("A2")],
            case_officers=[{"case_no": "A1", "police_no": P2, "role": "assistant"}],
            case_actions=[
                _action("X-OWN", "A1", "seize", police_no=P1),  # the action officer's own clip
                _action(
                    "X-CASEOFF", "A1", "seal", police_no=P3, start="2026-02-11 10:00:00", end="2026-02-11 10:30:00"
                ),  # a clip of a case officer (P2)
                _action(
                    "X-TAG", "A2", "sampling", police_no=P3, start="2026-02-12 10:00:00", end="2026-02-12 10:30:00"
                ),  # a clip of a stranger tagged with the case
                _action(
                    "X-TOUCH", "A1", "survey", police_no=P1, start="2026-02-13 10:00:00", end="2026-02-13 10:30:00"
                ),  # clip only touches the action: no support
                _action(
                    "X-STRANGER", "A2", "hearing", police_no=P3, start="2026-02-14 10:00:00", end="2026-02-14 10:30:00"
                ),  # overlapping clip of someone unrelated, untagged
                _action("X-NOAV", "A1", "inquiry"),  # not an AV action
            ],
            clips=[
                _clip("C1", "2026-02-10 10:29:00", "2026-02-10 10:45:00"),
                _clip("C2", "2026-02-11 09:00:00", "2026-02-11 10:01:00", police_no=P2, device_sn="SN-D2"),
                _clip("C3", "2026-02-12 10:05:00", "2026-02-12 10:06:00", police_no="010004", case_no="A2"),
                _clip("C4", "2026-02-13 10:30:00", "2026-02-13 10:50:00"),
                _clip("C5", "2026-02-14 10:05:00", "2026-02-14 10:06:00", police_no="010004"),
            ],
        ),
    )
    assert keys(eng, "AV-MEASURE") == {("X-TOUCH",), ("X-STRANGER",)}
    f = findings(eng, "AV-MEASURE").set_index("action_id")
    assert f.loc["X-TOUCH", "article"] == "第十四条"
    assert "同步音像记录" in f.loc["X-TOUCH", "detail"]


def test_doc_signature_and_refusal_with_and_without_witness(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("A1")],
            case_documents=[
                _doc("D-SIGNED", "A1", "inquiry_record", party_signed=1),
                _doc("D-UNSIGNED", "A1", "inquiry_record", party_signed=0),
                _doc("D-NULL", "A1", "statement_record"),
                _doc(
                    "D-REF-OK",
                    "A1",
                    "refusal_record",
                    party_signed=0,
                    party_refused=1,
                    officer_signed=1,
                    witness_signed=1,
                ),
                _doc("D-REF-NOWIT", "A1", "refusal_record", party_refused=1, officer_signed=1, witness_signed=0),
                _doc("D-REF-NOOFF", "A1", "seal_seize_list", party_refused=1, officer_signed=0, witness_signed=1),
                _doc(
                    "D-NOSIG-NEEDED",
                    "A1",
                    "penalty_decision",
                    party_signed=0,
                    drafter_no=P1,
                    reviewer_no=P2,
                    approver_no=P3,
                    legal_basis="治安管理处罚法第二十三条",
                ),
            ],
        ),
    )
    assert keys(eng, "DOC-SIGNATURE") == {("D-UNSIGNED",), ("D-NULL",), ("D-REF-NOWIT",), ("D-REF-NOOFF",)}
    f = findings(eng, "DOC-SIGNATURE").set_index("doc_id")
    assert "见证人签字" in f.loc["D-REF-NOWIT", "detail"]
    assert "执法人员签字" in f.loc["D-REF-NOOFF", "detail"]
    assert str(f.loc["D-NULL", "occurred_at"]) == "2026-02-10 11:00:00"


def test_start_approval_emergency_backfill(sqlite_url):
    st = "2026-02-01 10:00:00"
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[
                _case("A-OK", source="ex_officio", started_at=st, start_approved_at="2026-02-01 09:00:00"),
                _case("A-SAME", source="ex_officio", started_at=st, start_approved_at=st),
                _case("A-NONE", source="ex_officio", started_at=st),
                _case("A-LATE", source="ex_officio", started_at=st, start_approved_at="2026-02-01 10:00:01"),
                _case(
                    "A-EM23",
                    source="ex_officio",
                    emergency_start=1,
                    started_at=st,
                    start_approved_at="2026-02-02 09:00:00",
                ),
                _case(
                    "A-EM24",
                    source="ex_officio",
                    emergency_start=1,
                    started_at=st,
                    start_approved_at="2026-02-02 10:00:00",
                ),
                _case(
                    "A-EM25",
                    source="ex_officio",
                    emergency_start=1,
                    started_at=st,
                    start_approved_at="2026-02-02 11:00:00",
                ),
                _case("A-EMNONE", source="ex_officio", emergency_start=1, started_at=st),
                _case("A-SIMPLE", source="ex_officio", procedure="simple", started_at=st),
                _case("A-COMPL", source="complaint", started_at=st),
            ]
        ),
    )
    assert keys(eng, "START-APPROVAL") == {("A-NONE",), ("A-LATE",), ("A-EM25",), ("A-EMNONE",)}
    f = findings(eng, "START-APPROVAL").set_index("case_no")
    assert "24小时" in f.loc["A-EM25", "detail"]
    assert str(f.loc["A-NONE", "occurred_at"]) == "2026-02-01 09:00:00"  # registered_at
    assert f.loc["A-NONE", "article"] == "第九条"


def test_major_review(sqlite_url):
    pd_ok = {"drafter_no": P1, "reviewer_no": P2, "approver_no": P3, "legal_basis": "x"}
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[
                _case("M-OK", is_major=1),
                _case("M-SAME", is_major=1),
                _case("M-LATE", is_major=1),
                _case("M-NOREV", is_major=1),
                _case("M-NODEC", is_major=1),
                _case("N-MINOR"),
            ],
            case_documents=[
                _doc("R1", "M-OK", "legal_review", created="2026-02-10 09:00:00"),
                _doc("P1", "M-OK", "penalty_decision", created="2026-02-10 10:00:00", **pd_ok),
                _doc("R2", "M-SAME", "legal_review", created="2026-02-10 10:00:00"),
                _doc("P2", "M-SAME", "on_spot_decision", created="2026-02-10 10:00:00"),
                _doc("R3", "M-LATE", "legal_review", created="2026-02-10 10:00:01"),
                _doc("P3", "M-LATE", "penalty_decision", created="2026-02-10 10:00:00", **pd_ok),
                _doc("P4", "M-NOREV", "penalty_decision", created="2026-02-10 10:00:00", **pd_ok),
                _doc("P5", "N-MINOR", "penalty_decision", created="2026-02-10 10:00:00", **pd_ok),
            ],
        ),
    )
    assert keys(eng, "MAJOR-REVIEW") == {("M-LATE",), ("M-NOREV",)}


def test_not_filed_notice(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[
                _case("F-COMPL", filed=0, source="complaint"),
                _case("F-REPORT", filed=0, source="report"),
                _case("F-ASSIGN", filed=0, source="assigned"),
                _case("F-TRANS", filed=0, source="transferred"),
                _case("F-EXOFF", filed=0, source="ex_officio"),
                _case("F-OTHER", filed=0, source="other"),
                _case("F-FILED", filed=1, source="complaint"),
                _case("F-UNDECIDED", filed=None, source="report"),
                _case("F-NOTICED", filed=0, source="complaint"),
            ],
            case_documents=[_doc("N1", "F-NOTICED", "not_filed_notice")],
        ),
    )
    assert keys(eng, "NOT-FILED-NOTICE") == {("F-COMPL",), ("F-REPORT",), ("F-ASSIGN",), ("F-TRANS",)}


def test_decision_record(sqlite_url):
    full = {"drafter_no": P1, "reviewer_no": P2, "approver_no": P3, "legal_basis": "治安管理处罚法"}
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("A1")],
            case_documents=[
                _doc("P-OK", "A1", "penalty_decision", **full),
                _doc("P-NOBASIS", "A1", "penalty_decision", **{**full, "legal_basis": "  "}),
                _doc("P-NOREV", "A1", "penalty_decision", **{**full, "reviewer_no": None}),
                _doc("O-SPOT", "A1", "on_spot_decision"),
            ],
        ),
    )
    assert keys(eng, "DECISION-RECORD") == {("P-NOBASIS",), ("P-NOREV",)}
    f = findings(eng, "DECISION-RECORD").set_index("doc_id")
    assert "法律依据" in f.loc["P-NOBASIS", "detail"] and "审核人" in f.loc["P-NOREV", "detail"]


def test_rights_notice(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("G-OK"), _case("G-SAME"), _case("G-NONE"), _case("S-SIMPLE", procedure="simple")],
            case_documents=[
                _doc("RN1", "G-OK", "rights_notice", created="2026-02-10 09:00:00", party_signed=1),
                _doc("PD1", "G-OK", "penalty_decision", created="2026-02-10 10:00:00"),
                _doc("RN2", "G-SAME", "rights_notice", created="2026-02-10 10:00:00", party_signed=1),
                _doc("PD2", "G-SAME", "penalty_decision", created="2026-02-10 10:00:00"),
                _doc("PD3", "G-NONE", "penalty_decision", created="2026-02-10 10:00:00"),
                _doc("PD4", "S-SIMPLE", "penalty_decision", created="2026-02-10 10:00:00"),
            ],
        ),
    )
    assert keys(eng, "RIGHTS-NOTICE") == {("G-SAME",), ("G-NONE",)}


def test_simple_procedure(sqlite_url):
    dec = "2026-02-10 10:00:00"
    eng = load_scenario(
        sqlite_url,
        world(
            cases=[
                _case("S-OK", procedure="simple", decided_at=dec),
                _case("S-NOFILING", procedure="simple", decided_at=dec),
                _case("S-UNDECIDED", procedure="simple"),
                _case("G-GEN", procedure="general", decided_at=dec),
            ],
            case_documents=[
                _doc("a", "S-OK", "on_spot_decision"),
                _doc("b", "S-OK", "statement_record", party_signed=1),
                _doc("c", "S-OK", "filing_record"),
                _doc("d", "S-NOFILING", "on_spot_decision"),
                _doc("e", "S-NOFILING", "statement_record", party_signed=1),
            ],
        ),
    )
    assert keys(eng, "SIMPLE-PROCEDURE") == {("S-NOFILING",)}
    assert "备案记录" in findings(eng, "SIMPLE-PROCEDURE")["detail"].iloc[0]


def test_delivery_each_method(sqlite_url):
    docs = [
        _doc(f"DOC-{i}", "A1", t)
        for i, t in enumerate(
            [
                "penalty_decision",
                "on_spot_decision",
                "seal_seize_decision",
                "urge_notice",
                "enforcement_decision",
                "not_filed_notice",
                "penalty_decision",
                "penalty_decision",
                "penalty_decision",
                "penalty_decision",
                "penalty_decision",
                "penalty_decision",
                "penalty_decision",
                "inquiry_record",
            ]
        )
    ]
    for d in docs:
        if d["doc_type"] == "penalty_decision":
            d.update(drafter_no=P1, reviewer_no=P2, approver_no=P3, legal_basis="x")
        if d["doc_type"] == "inquiry_record":
            d["party_signed"] = 1
    at = "2026-02-11 10:00:00"

    def dl(i: int, doc: int, method: str, **kw) -> dict:
        return {"delivery_id": f"DL{i}", "doc_id": f"DOC-{doc}", "method": method, "delivered_at": at, **kw}

    eng = load_scenario(
        sqlite_url,
        world(
            cases=[_case("A1")],
            case_documents=docs,
            deliveries=[
                dl(0, 0, "direct", receipt_signed=1),  # ok
                dl(1, 1, "direct", receipt_signed=0),  # direct without receipt
                dl(2, 2, "entrusted", receipt_signed=1, reason="本人外出", entrustee="王某 138"),  # ok
                dl(3, 3, "entrusted", receipt_signed=1, reason="本人外出"),  # entrusted without entrustee
                dl(4, 4, "mail", postal_receipt=1),  # ok
                dl(5, 5, "mail", postal_receipt=0, receipt_signed=1),  # mail without postal receipt
                dl(6, 6, "left", note="拒收，已拍照"),  # ok
                dl(7, 7, "left", note=""),  # left without note
                dl(8, 8, "public_notice", reason="下落不明", note="公告60日"),  # ok
                dl(9, 9, "public_notice", note="公告60日"),  # public notice without reason
                # DOC-10 has no delivery at all
                dl(11, 11, "entrusted", receipt_signed=0, reason="x", entrustee="y"),  # entrusted without receipt
                dl(12, 12, "direct", receipt_signed=1),
                dl(13, 12, "mail", postal_receipt=0),  # one of two incomplete
                dl(14, 13, "direct", receipt_signed=0),  # not a served document
            ],
        ),
    )
    assert keys(eng, "DELIVERY") == {
        ("DOC-1",),
        ("DOC-3",),
        ("DOC-5",),
        ("DOC-7",),
        ("DOC-9",),
        ("DOC-10",),
        ("DOC-11",),
        ("DOC-12",),
    }
    f = findings(eng, "DELIVERY").set_index("doc_id")
    assert "没有送达记录" in f.loc["DOC-10", "detail"]
    assert "受托人" in f.loc["DOC-3", "detail"] and "付邮凭证" in f.loc["DOC-5", "detail"]
    assert f.loc["DOC-1", "article"] == "第二十三条"


def test_performance_check_as_of_evaluation_date(sqlite_url):
    pdoc = {"drafter_no": P1, "reviewer_no": P2, "approver_no": P3, "legal_basis": "x"}
    cases = [_case(n) for n in ("PC-OLD", "PC-DONE", "PC-RECENT", "PC-EXACT", "PC-UNDELIVERED")]
    docs = [
        _doc(f"PD-{c['case_no']}", c["case_no"], "penalty_decision", created="2026-01-05 10:00:00", **pdoc)
        for c in cases
    ]
    as_of = "2026-03-31 23:59:59"
    deliveries = [
        {
            "delivery_id": "1",
            "doc_id": "PD-PC-OLD",
            "method": "direct",
            "receipt_signed": 1,
            "delivered_at": "2026-02-01 10:00:00",
        },
        {
            "delivery_id": "2",
            "doc_id": "PD-PC-DONE",
            "method": "direct",
            "receipt_signed": 1,
            "delivered_at": "2026-02-01 10:00:00",
        },
        {
            "delivery_id": "3",
            "doc_id": "PD-PC-RECENT",
            "method": "direct",
            "receipt_signed": 1,
            "delivered_at": "2026-03-15 10:00:00",
        },
        {
            "delivery_id": "4",
            "doc_id": "PD-PC-EXACT",
            "method": "direct",
            "receipt_signed": 1,
            "delivered_at": "2026-03-01 23:59:59",
        },  # exactly 30 days before: not more than 30
    ]
    eng = load_scenario(
        sqlite_url,
        world(
            cases=cases,
            case_documents=docs,
            deliveries=deliveries,
            case_actions=[
                _action("PCA", "PC-DONE", "performance_check", start="2026-03-01 10:00:00", end="2026-03-01 11:00:00")
            ],
        ),
        as_of=as_of,
    )
    assert keys(eng, "PERFORMANCE-CHECK") == {("PC-OLD",)}
    assert "30天" in findings(eng, "PERFORMANCE-CHECK")["detail"].iloc[0]
