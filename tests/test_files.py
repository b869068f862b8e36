"""The one atomic write: a failed write leaves the old file and no temporary behind; bad JSON is one clear error."""

import pytest

from crepe.io.files import read_json, write_atomic, write_json_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "report.json"
    write_json_atomic(path, {"ppl": 1.5})
    assert read_json(path) == {"ppl": 1.5}

    def half_then_fail(tmp):
        tmp.write_text('{"ppl": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, half_then_fail)
    assert read_json(path) == {"ppl": 1.5}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_unreadable_json_names_what_was_read(tmp_path):
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read allocation plan .*plan.json"):
        read_json(tmp_path / "plan.json", "allocation plan")
    with pytest.raises(ValueError, match="cannot read JSON .*missing.json"):
        read_json(tmp_path / "missing.json")
