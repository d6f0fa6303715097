"""`durabletopic validate` offline, over the corpus: every bad manifest gets its verdict, every good one passes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from durabletopic import cli
from durabletopic.core.model import Policy
from durabletopic.core.reasons import Severity, Stage
from durabletopic.tools import manifests, validate
from tests import corpus

BAD = corpus.entries("bad")
GOOD = corpus.entries("good")
READABLE_BAD = [e for e in BAD if e.stage != "unreadable"]
UNREADABLE = [e for e in BAD if e.stage == "unreadable"]


def run_validate(entry: corpus.Entry, *, strict: bool = False) -> validate.Report:
    previous = [str(entry.previous)] if entry.previous else []
    return validate.validate([str(entry.path)], Policy(), previous, strict=strict)


def test_corpus_is_big_enough_and_well_formed() -> None:
    assert len(BAD) >= 40 and len(GOOD) >= 3
    for entry in BAD:
        assert entry.expect or entry.warn or entry.stage in ("kafka", "unreadable"), entry.id
        assert (entry.stage == "unreadable") == (entry.unreadable_line is not None), entry.id
        if entry.previous:
            assert entry.previous.is_file(), entry.id
    stages = {e.stage for e in BAD}
    # "operator" (admitted, then refused by the operator's own rules) has no entry: the CRD carries
    # every rule of rules.check_spec, so such a manifest no longer exists.
    assert {"api-server", "admission-policy", "kafka", "unreadable"} <= stages


@pytest.mark.parametrize("entry", READABLE_BAD, ids=lambda e: e.id)
def test_bad_manifest_gets_its_verdict(entry: corpus.Entry) -> None:
    report = run_validate(entry)
    assert not report.errors
    assert len(report.manifests) == 1
    errors = {(f.rule, f.field) for f in report.findings if f.severity is Severity.ERROR}
    warnings = {(f.rule, f.field) for f in report.findings if f.severity is Severity.WARNING}
    assert errors == entry.expect
    assert warnings == entry.warn
    assert report.exit_code() == (1 if entry.expect else 0)
    # The stage: who refuses it first.
    stages = {f.stage for f in report.findings if f.severity is Severity.ERROR}
    first = next((s for s in Stage if s in stages), None)
    expected_first = {"kafka": None, "valid": None}.get(entry.stage, entry.stage)
    assert (str(first) if first else None) == expected_first
    for finding in report.findings:
        assert finding.file == str(entry.path) and finding.document == 0 and finding.line >= 1
        assert finding.message


@pytest.mark.parametrize("entry", UNREADABLE, ids=lambda e: e.id)
def test_unreadable_input_is_refused_with_file_and_line(
    entry: corpus.Entry, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    code = cli.main(["validate", str(entry.path)])
    elapsed = time.monotonic() - start
    assert code == 2
    err = capsys.readouterr().err
    assert f"{entry.path}:{entry.unreadable_line}:" in err, err
    assert len(err.strip().splitlines()) == 1
    assert elapsed < 2


@pytest.mark.parametrize("entry", GOOD, ids=lambda e: e.id)
def test_good_manifest_passes(entry: corpus.Entry) -> None:
    report = run_validate(entry, strict=True)
    assert report.valid, report.findings
    assert report.manifests and not report.findings


def test_whole_corpus_directories(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(corpus.CORPUS / "good")]) == 0
    assert (
        "valid: 7 DurableTopic(s) in 6 file(s), 0 invalid, 1 other object(s) skipped"
        in capsys.readouterr().out
    )
    # bad/ holds unreadable files: exit 2 wins; the readable ones are still reported.
    assert cli.main(["validate", str(corpus.CORPUS / "bad")]) == 2
    captured = capsys.readouterr()
    assert "config-min-isr.yaml" in captured.out and "yaml-bomb.yaml" in captured.err
    # The *.yaml.old files are not picked up by the directory walk.
    assert ".yaml.old" not in captured.out


def test_yaml_bomb_is_refused_quickly() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]" for p, c in zip("abcdefghi", "bcdefghij", strict=True)
    ]
    text = "\n".join(levels) + "\n"
    start = time.monotonic()
    with pytest.raises(ValueError, match="YAML bomb"):
        manifests.parse_manifests(text)
    assert time.monotonic() - start < 0.5


def test_small_aliases_and_merge_keys_are_read_as_kubectl_reads_them() -> None:
    text = (
        "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata: {name: a}\n"
        "spec:\n  partitions: &p 3\n  replicationFactor: *p\n  minInSyncReplicas: 2\n"
        "  config:\n    <<: {retention.ms: '1'}\n    segment.ms: 2024-01-01\n"
    )
    [manifest] = manifests.parse_manifests(text)
    assert manifest.object["spec"] == {
        "partitions": 3,
        "replicationFactor": 3,
        "minInSyncReplicas": 2,
        "config": {"retention.ms": "1", "segment.ms": "2024-01-01"},
    }


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("yes", True),
        ("y", True),
        ("Off", False),
        ("010", 8),
        ("0o10", 8),
        ("0x1F", 31),
        ("1_000", 1000),
        ("09", 9),
        ("1e3", 1000),
        ("3.0", 3),
        ("2.5", 2.5),
        ("~", None),
        ("1:20", "1:20"),
        ("2024-01-01", "2024-01-01"),
        ("=", "="),
        ("100000000000000000000", 1e20),
    ],
)
def test_scalars_resolve_as_in_go_yaml(scalar: str, value: object) -> None:
    [document], problem = manifests.load_documents(f"x: {scalar}\n", "f")
    assert problem is None
    assert document.value == {"x": value}
    assert type(document.value["x"]) is type(value)


def test_metadata_name_is_the_topic_name_only_without_topic_name() -> None:
    long_name = "m" * 250
    text = (
        "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\n"
        f"metadata: {{name: {long_name}}}\nspec: {{partitions: 1, topicName: short}}\n"
    )
    [manifest] = manifests.parse_manifests(text)
    assert validate.check_manifest(manifest, Policy()) == []


def test_floors_follow_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata: {name: t}\n"
        "spec: {partitions: 1, replicationFactor: 2, minInSyncReplicas: 1}\n"
    )
    assert cli.main(["validate", str(path)]) == 1
    assert "rule replication-factor-floor; refused by admission-policy" in capsys.readouterr().out
    assert (
        cli.main(["validate", str(path), "--min-replication-factor", "2", "--min-insync-replicas", "1"]) == 0
    )


def test_transitions_need_the_previous_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    entry = next(e for e in BAD if e.path.name == "partitions-decrease.yaml")
    assert cli.main(["validate", str(entry.path)]) == 0
    capsys.readouterr()
    assert entry.previous is not None
    assert cli.main(["validate", str(entry.path), "--previous", str(entry.previous)]) == 1
    assert "spec.partitions may only grow" in capsys.readouterr().out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [
        str(corpus.CORPUS / "bad" / name) for name in ("min-isr-equals-rf.yaml", "below-floor-both.yaml")
    ]
    assert cli.main(["validate", "--output", "json", *paths]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["objects"] == 2 and report["errors"] == []
    first = report["findings"][0]
    assert set(first) == {
        "file",
        "document",
        "line",
        "name",
        "field",
        "rule",
        "message",
        "stage",
        "severity",
        "policy",
    }
    assert first["policy"] is None
    assert (first["name"], first["field"], first["rule"], first["stage"]) == (
        "min-isr-equals-rf",
        "spec.minInSyncReplicas",
        "min-insync-below-replication-factor",
        "api-server",
    )
    assert {f["stage"] for f in report["findings"][1:]} == {"admission-policy"}


def test_unreadable_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus.CORPUS / "bad" / "yaml-unclosed.yaml"
    assert cli.main(["validate", "--output", "json", str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    [error] = report["errors"]
    assert error["file"] == str(path) and error["line"] == 10


def test_strict_makes_unknown_fields_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata: {name: t}\n"
        "spec: {partitions: 1, retentionMs: 5}\n"
    )
    assert validate.validate([str(path)]).valid
    [finding] = validate.validate([str(path)], strict=True).findings
    assert (finding.rule, finding.field, finding.severity) == ("unknown-field", "spec.retentionMs", "error")
    # kubectl lets the last of duplicate keys win, strict or not: a warning either way.
    entry = next(e for e in BAD if e.path.name == "duplicate-key.yaml")
    assert run_validate(entry).valid and run_validate(entry, strict=True).valid


def test_missing_file_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO((corpus.CORPUS / "good" / "minimal.yaml").read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(["validate", "-"]) == 0


def test_file_size_and_document_caps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (manifests.MAX_FILE_BYTES + 1))
    assert cli.main(["validate", str(big)]) == 2
    assert "larger than 5 MiB" in capsys.readouterr().err
    many = tmp_path / "many.yaml"
    many.write_text("---\na: 1\n" * (manifests.MAX_DOCUMENTS + 1))
    assert cli.main(["validate", str(many)]) == 2
    assert f"more than {manifests.MAX_DOCUMENTS} documents" in capsys.readouterr().err


def test_plan_refuses_invalid_manifests_without_kafka(capsys: pytest.CaptureFixture[str]) -> None:
    # Every manifest is rejected by the API server: no Kafka call is made (the address is unroutable).
    path = corpus.CORPUS / "bad" / "min-isr-equals-rf.yaml"
    assert cli.main(["plan", str(path), "--bootstrap-servers", "127.0.0.1:1", "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "refuse RejectedByAPIServer: spec.minInSyncReplicas" in out


HEADER = "apiVersion: durabletopic.dev/v1alpha1\nkind: DurableTopic\nmetadata: {name: a}\nspec:\n"


def _weird_inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "a 5,000-digit number": HEADER + "  partitions: " + "9" * 5000 + "\n",
        "a float beyond float64": HEADER + "  partitions: 1e5000\n",
        "a 5,000-digit key": HEADER + "  partitions: 1\n  config:\n    " + "9" * 5000 + ": x\n",
        "deep flow nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "deep block nesting": "".join("  " * i + "k:\n" for i in range(400)),
    }
    paths = {}
    for i, (what, text) in enumerate(files.items()):
        paths[what] = tmp_path / f"weird-{i}.yaml"
        paths[what].write_text(text)
    paths["binary data"] = tmp_path / "binary.yaml"
    paths["binary data"].write_bytes(bytes(range(256)) * 64)
    paths["a 100 MiB file"] = tmp_path / "huge.yaml"
    with paths["a 100 MiB file"].open("wb") as sparse:
        sparse.seek(100 * 1024 * 1024)
        sparse.write(b"x")
    return paths


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_any_input_gets_a_verdict_never_a_traceback(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--bootstrap-servers", "127.0.0.1:1", "--timeout", "1"] if command == "plan" else []
    for what, path in _weird_inputs(tmp_path).items():
        code = cli.main([command, str(path), *extra])
        out = capsys.readouterr()
        assert code in (1, 2), (what, code, out)
        assert "Traceback" not in out.out + out.err, what
        if code == 2:
            assert out.err.startswith(f"durabletopic {command}: "), (what, out.err)
