"""Policy: schema errors that name the field, tiers that only narrow, denied folders, managed-file safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paddock.policy import PolicyError, load
from paddock.policy.effective import check_admin_owned

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "packaging" / "policy" / "managed-policy.example.json"
# The tests run as an ordinary user (as Paddock does), who cannot make root-owned files: they
# stand in for the administrator with their own uid (``admin_uid``). Under root it is root itself.
# A real root-owned policy, prepared by scripts/test.sh as root, is checked at the end.
ADMIN = os.geteuid()


def _write(path: Path, data: object, *, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    path.chmod(mode)
    return path


def _not_the_admins(path: Path) -> tuple[int, int]:
    """Make ``path`` belong to someone who is not the administrator. Returns (the admin uid to
    check with, the owner the refusal must name)."""
    if ADMIN == 0:
        os.chown(path, 1000, 1000)
        return 0, 1000
    return 0, ADMIN  # the file stays ours, and the administrator is root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    for d in (".ssh", ".aws", ".gnupg", ".mozilla/firefox/x.default", "Documents/Reports", "Projects", "Other"):
        (h / d).mkdir(parents=True)
    (h / ".ssh" / "id_ed25519").write_text("not a real key")
    return h


def _load(tmp_path: Path, home: Path, managed: object = None, user: object = None, **kw: object) -> object:
    m = _write(tmp_path / "etc" / "managed.json", managed) if managed is not None else tmp_path / "none-m.json"
    u = _write(tmp_path / "user" / "settings.json", user) if user is not None else tmp_path / "none-u.json"
    return load(managed=m, recommended=tmp_path / "none-r.json", user=u, home=home, admin_uid=ADMIN, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ precedence


def test_lower_tiers_narrow_and_never_widen(tmp_path: Path, home: Path) -> None:
    managed = {
        "mounts": {"allowed_roots": ["~/Documents", "~/Projects"]},
        "models": {"allowed": ["model-a", "model-b"]},
        "egress": {
            "grants": [
                {"id": "api", "host": "api.example.com", "methods": ["POST"], "path_pattern": "/v1/x"},
                {"id": "charts", "host": "charts.example.com"},
            ]
        },
    }
    user = {
        "mounts": {"allowed_roots": ["~/Documents/Reports", "~/Other"], "denied_paths": ["~/Projects"]},
        "models": {"allowed": ["model-b", "model-z"]},
        "egress": {"disabled_grants": ["charts"], "allow_asking": True},
        "hooks": {"allow_folder_hooks": True},
    }
    eff = _load(tmp_path, home, managed, user)
    assert eff.allowed_roots == [home / "Documents" / "Reports"]  # ~/Other was outside the managed roots
    assert eff.models_allowed == ["model-b"]  # model-z was not allowed by the admin
    assert [g.id for g in eff.grants] == ["api"]  # the user switched one off, added none
    assert eff.allow_asking is False and eff.allow_folder_hooks is False  # the admin's word
    assert eff.sources["allowed_roots"] == "managed, user"
    assert not eff.check_folder(home / "Projects").allowed
    assert not eff.check_folder(home / "Other").allowed
    assert eff.check_folder(home / "Documents" / "Reports").allowed


def test_a_lower_tier_cannot_add_grants_or_change_audit(tmp_path: Path, home: Path) -> None:
    user = {"egress": {"grants": [{"id": "mine", "host": "evil.example.com", "methods": ["POST"]}]}}
    with pytest.raises(PolicyError, match=r"egress\.grants may be set only in the managed policy"):
        _load(tmp_path, home, {}, user)
    with pytest.raises(PolicyError, match="audit may be set only in the managed policy"):
        _load(tmp_path, home, {}, {"audit": {"otlp_endpoint": None}})


def test_the_folder_tier_is_read_only_after_trust(tmp_path: Path, home: Path) -> None:
    folder = home / "Documents" / "Reports"
    (folder / ".claude").mkdir()
    (folder / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "touch marker"}]}]},
                "paddock": {
                    "mounts": {"denied_paths": ["~/Documents/Reports/private"]},
                    "models": {"allowed": ["model-a"]},
                },
            }
        )
    )
    untrusted = _load(tmp_path, home, {}, None, folder=folder, folder_trusted=False)
    assert untrusted.models_allowed is None and [t.name for t in untrusted.tiers] == ["managed"]
    trusted = _load(tmp_path, home, {}, None, folder=folder, folder_trusted=True)
    assert trusted.models_allowed == ["model-a"] and [t.name for t in trusted.tiers] == ["managed", "folder"]
    assert trusted.allow_folder_hooks is False


def test_the_undo_budget_is_the_admins_else_the_users_never_the_folders(tmp_path: Path, home: Path) -> None:
    assert _load(tmp_path, home, {}, None).undo_budget_mb is None  # default: a share of the free disk
    assert _load(tmp_path, home, {}, {"undo": {"budget_mb": 0}}).undo_budget_mb == 0  # the user turns it off
    eff = _load(tmp_path, home, {"undo": {"budget_mb": 500}}, {"undo": {"budget_mb": 0}})
    assert eff.undo_budget_mb == 500 and eff.sources["undo_budget_mb"] == "managed"
    folder = home / "Documents" / "Reports"
    (folder / ".claude").mkdir()
    (folder / ".claude" / "settings.json").write_text(json.dumps({"paddock": {"undo": {"budget_mb": 0}}}))
    trusted = _load(tmp_path, home, {}, None, folder=folder, folder_trusted=True)
    assert trusted.undo_budget_mb is None  # a folder cannot switch off the undo of what is done to it
    assert ("undo_budget_mb", "a tenth of the free disk", "default") in trusted.describe()
    with pytest.raises(PolicyError, match="budget_mb"):
        _load(tmp_path, home, {"undo": {"budget_mb": -1}}, None)


# ------------------------------------------------------------------ denied folders


@pytest.mark.parametrize("rel", [".ssh", ".aws", ".gnupg", ".mozilla/firefox/x.default", ".", "Documents/../.ssh"])
def test_denied_paths_directly_and_through_dotdot(tmp_path: Path, home: Path, rel: str) -> None:
    eff = _load(tmp_path, home)
    decision = eff.check_folder(home / rel)
    assert not decision.allowed
    assert "never shares" in decision.reason


def test_denied_paths_through_symlinks(tmp_path: Path, home: Path) -> None:
    eff = _load(tmp_path, home)
    links = tmp_path / "links"
    links.mkdir()
    (links / "innocent").symlink_to(home / ".ssh")
    (links / "homey").symlink_to(home)
    (home / "Projects" / "sneaky").symlink_to("../.aws")
    for p in (links / "innocent", links / "homey", home / "Projects" / "sneaky"):
        assert not eff.check_folder(p).allowed, p


@pytest.mark.parametrize("folder", ["/", "/etc", "/usr/lib", "/var/log", "/proc"])
def test_system_folders_are_denied(tmp_path: Path, home: Path, folder: str) -> None:
    assert not _load(tmp_path, home).check_folder(Path(folder)).allowed


def test_an_ordinary_folder_is_allowed_and_read_only_rules_apply(tmp_path: Path, home: Path) -> None:
    eff = _load(tmp_path, home, {"mounts": {"read_only": ["~/Documents"]}})
    assert eff.check_folder(home / "Projects").allowed
    d = eff.check_folder(home / "Documents" / "Reports")
    assert d.allowed and d.read_only


# ------------------------------------------------------------------ managed file safety


def test_user_owned_or_user_writable_managed_files_are_refused(tmp_path: Path) -> None:
    base = tmp_path / "etc"
    base.mkdir()
    good = _write(base / "good.json", {"version": 1})
    check_admin_owned(good, ADMIN)
    owned = _write(base / "owned.json", {"version": 1})
    admin, owner = _not_the_admins(owned)
    with pytest.raises(PolicyError, match=f"owned by uid {owner}"):
        load(managed=owned, recommended=tmp_path / "x", user=tmp_path / "y", admin_uid=admin)
    writable = _write(base / "writable.json", {"version": 1}, mode=0o666)
    with pytest.raises(PolicyError, match="can be written by other users"):
        load(managed=writable, recommended=tmp_path / "x", user=tmp_path / "y", admin_uid=ADMIN)
    link = base / "link.json"
    link.symlink_to(owned)
    with pytest.raises(PolicyError, match=f"owned by uid {owner}"):
        load(managed=link, recommended=tmp_path / "x", user=tmp_path / "y", admin_uid=admin)


@pytest.mark.as_root
@pytest.mark.skipif(ADMIN != 0, reason="a root-owned file in a user's folder can only be made by root")
def test_a_root_owned_file_in_a_users_folder_is_refused(tmp_path: Path) -> None:
    user_dir = tmp_path / "userdir"
    user_dir.mkdir()
    os.chown(user_dir, 1000, 1000)
    inside = _write(user_dir / "p.json", {"version": 1})
    with pytest.raises(PolicyError, match=f"{user_dir} is owned by uid 1000"):
        load(managed=inside, recommended=tmp_path / "x", user=tmp_path / "y")


def test_a_real_root_owned_managed_policy_is_accepted(tmp_path: Path) -> None:
    """With root as the only administrator (as installed): a file root prepared is taken."""
    prepared = os.environ.get("PADDOCK_TEST_ADMIN_DIR")
    if prepared:
        path = Path(prepared) / "managed-policy.json"
    elif ADMIN == 0:
        path = _write(tmp_path / "etc" / "managed-policy.json", {"version": 1})
    else:
        pytest.skip("needs a root-owned policy: scripts/test.sh prepares one when run as root")
    assert path.stat().st_uid == 0
    policy = load(managed=path, recommended=tmp_path / "x", user=tmp_path / "y")
    assert [t.name for t in policy.tiers] == ["managed"]
    ours = _write(tmp_path / "mine.json", {"version": 1})
    if ADMIN != 0:  # and the same file of an ordinary user is not
        with pytest.raises(PolicyError, match=f"owned by uid {ADMIN}"):
            load(managed=ours, recommended=tmp_path / "x", user=tmp_path / "y")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ('["a list"]', "must be a JSON object"),
        ('{"mounts": {"allowed_roots": "~/Documents"}}', "mounts.allowed_roots: Input should be a valid list"),
        ('{"mounts": {"alowed_roots": []}}', "mounts.alowed_roots: unknown field"),
        ('{"version": 2}', "version: Input should be 1"),
        ('{"egress": {"grants": [{"id": "x", "host": "10.0.0.1"}]}}', "egress.grants.0.host"),
        ('{"egress": {"grants": [{"id": "x", "host": "a.example.com", "port": "443"}]}}', "egress.grants.0.port"),
        (
            '{"egress": {"grants": [{"id": "x", "host": "a.example.com", "methods": ["CONNECT"]}]}}',
            "egress.grants.0.methods.0",
        ),
    ],
)
def test_malformed_files_give_the_file_and_field(tmp_path: Path, content: str, expected: str) -> None:
    path = _write(tmp_path / "etc" / "managed.json", content)
    with pytest.raises(PolicyError) as info:
        load(managed=path, recommended=tmp_path / "x", user=tmp_path / "y", admin_uid=ADMIN)
    assert str(path) in info.value.message and expected in info.value.message


def test_policy_check_cli_explains_the_shipped_example() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "policy", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stdout
    assert "anthropic-messages (POST https://api.anthropic.com:443/v1/messages)" in proc.stdout
    assert "[managed]" in proc.stdout and "[built-in, managed]" in proc.stdout
    assert "replace-me" not in proc.stdout  # header values are not printed


def test_policy_check_cli_on_a_bad_file_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"mounts": {"denied_paths": [1]}}')
    proc = subprocess.run(
        [sys.executable, "-m", "paddock.cli", "policy", "check", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "mounts.denied_paths.0" in proc.stderr and "Traceback" not in proc.stderr


def test_a_tilde_user_path_is_that_users_home_not_a_suffix_of_ours(tmp_path: Path) -> None:
    from paddock.policy.effective import _expand

    home = tmp_path / "alice"
    assert _expand("~", home) == home.resolve()
    assert _expand("~/Documents", home) == (home / "Documents").resolve()
    import pwd

    assert _expand("~root/x", home) == Path(pwd.getpwnam("root").pw_dir) / "x"
    assert not str(_expand("~bob/x", home)).startswith(str(home))  # was <home>bob/x
