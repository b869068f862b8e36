"""The allocator knobs: the huge-page re-exec happens once, keeps the command line, and can be turned off."""

import sys

import pytest

import crepe.io.memory as memory


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(memory.os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setattr(memory, "hugepages_available", lambda: True)
    monkeypatch.delenv("CREPE_HUGEPAGES", raising=False)
    return calls


def test_restarts_the_same_command_with_the_tunable_added(execs, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    memory.reexec_with_hugepage_malloc()
    (exe, argv, env), = execs
    assert exe == sys.executable and argv == sys.orig_argv
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + memory.HUGEPAGE_TUNABLE


@pytest.mark.parametrize("case", ["already set", "turned off", "no THP"])
def test_no_restart_when_set_off_or_unavailable(execs, monkeypatch, case):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    if case == "already set":
        monkeypatch.setenv("GLIBC_TUNABLES", memory.HUGEPAGE_TUNABLE)
    elif case == "turned off":
        monkeypatch.setenv("CREPE_HUGEPAGES", "0")
    else:
        monkeypatch.setattr(memory, "hugepages_available", lambda: False)
    memory.reexec_with_hugepage_malloc()
    assert execs == []


def test_thp_mode_is_read_from_sysfs(tmp_path, monkeypatch):
    mode = tmp_path / "enabled"
    monkeypatch.setattr(memory, "_THP_MODE", mode)
    assert not memory.hugepages_available()  # no such file: not Linux, or no THP
    mode.write_text("always [madvise] never\n")
    assert memory.hugepages_available()
    mode.write_text("always madvise [never]\n")
    assert not memory.hugepages_available()
