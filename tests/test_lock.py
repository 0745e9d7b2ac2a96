"""The locks and pyproject.toml agree, and every install path uses the locks.

``requirements/runtime.lock`` pins what ``pip install`` of the package needs;
``requirements/test.lock`` pins that plus the test and dev extras. Both are written
by ``scripts/lock``; these checks catch a hand edit or a forgotten re-lock.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
TEST_LOCK = ROOT / "requirements" / "test.lock"
FROM_PYPROJECT = "qa-cite (pyproject.toml)"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: int
    direct: bool  # required by pyproject.toml itself, not only by another package


def read_lock(path: Path) -> dict[str, Pin]:
    """Parse uv's requirements output: pins, their hashes and their ``# via`` notes."""
    pins: dict[str, Pin] = {}
    name, version, hashes, direct = "", "", 0, False

    def close() -> None:
        if name:
            pins[canonicalize_name(name)] = Pin(version, hashes, direct)

    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        match = PIN.match(line)
        if match:
            close()
            name, version, hashes, direct = match[1], match[2], 0, False
        elif stripped.startswith("--hash=sha256:"):
            hashes += 1
        elif stripped.startswith("#") and FROM_PYPROJECT in stripped:
            direct = True
    close()
    return pins


def pyproject_requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


LOCKS = {
    "runtime": (RUNTIME_LOCK, ()),
    "test": (TEST_LOCK, ("test", "dev")),
}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_pinned_within_its_range(lock: str) -> None:
    path, extras = LOCKS[lock]
    pins = read_lock(path)
    for requirement in pyproject_requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is in pyproject.toml but not in {path.name}"
        version = pins[name].version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{path.name} pins {name}=={version}, outside pyproject.toml's {requirement}"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_nothing_is_locked_that_pyproject_no_longer_asks_for(lock: str) -> None:
    path, extras = LOCKS[lock]
    wanted = {canonicalize_name(r.name) for r in pyproject_requirements(*extras)}
    direct = {name for name, pin in read_lock(path).items() if pin.direct}
    assert direct == wanted, (
        f"{path.name} and pyproject.toml disagree: only in the lock {sorted(direct - wanted)}, "
        f"only in pyproject.toml {sorted(wanted - direct)}; run scripts/lock"
    )


def test_every_pin_has_a_hash_and_both_locks_agree() -> None:
    runtime, test = read_lock(RUNTIME_LOCK), read_lock(TEST_LOCK)
    for name, pin in {**runtime, **test}.items():
        assert pin.hashes, f"{name} has no hash"
    for name, pin in runtime.items():
        assert name in test, f"{name} is in runtime.lock but not in test.lock"
        assert test[name].version == pin.version, (name, pin.version, test[name].version)


def test_torch_is_the_cpu_build() -> None:
    torch = read_lock(RUNTIME_LOCK)["torch"]
    assert torch.version.endswith("+cpu"), torch.version
    assert not any(name.startswith("nvidia-") for name in read_lock(TEST_LOCK))


def quick_start() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_that_install_from_the_locks() -> None:
    install_and_ask, install_and_test = quick_start()
    assert "pip install -r requirements/runtime.lock" in install_and_ask
    assert "qa ask " in install_and_ask
    assert "pip install -r requirements/test.lock" in install_and_test
    assert install_and_test.rstrip().endswith("&& pytest")


def test_ci_runs_the_readme_test_command_and_docker_installs_from_the_lock() -> None:
    _, install_and_test = quick_start()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install_and_test in ci.splitlines(), "`.ci/run` must run the README's test command"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "-r requirements/runtime.lock" in dockerfile
    assert re.search(r"pip install --no-deps \.", dockerfile), "the package adds no unlocked deps"
