"""Sessions for the ming monorepo (run with the uv backend; every install honours constraints.txt).

- ``tests-<package>``: one venv per package holding only that package, its ``test`` extra and the ming-* packages
  it declares (transitively), so an undeclared dependency fails here.
- ``integration``: every package together, ``integration_tests/``.
- ``lint``: ruff format --check and ruff check.
- ``docs``: mkdocs build --strict (API pages by mkdocstrings, benchmark tables from the committed bench JSON).
- ``bench-<package>``: that package's benchmarks (print a table, write JSON under ``benchmarks/results/``).
- ``demo``: the examples of every package.

Plain ``nox`` runs lint, every tests session, integration and docs.
"""

from __future__ import annotations

import re
from pathlib import Path

import nox
import tomllib

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
CONSTRAINTS = str(ROOT / "constraints.txt")

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True


def _pyproject(package: str) -> dict:
    return tomllib.loads((PACKAGES_DIR / package / "pyproject.toml").read_text())


PACKAGES: list[str] = sorted(p.name for p in PACKAGES_DIR.iterdir() if (p / "pyproject.toml").is_file())


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def _ming_closure(package: str, extras: tuple[str, ...]) -> list[str]:
    """The ming-* packages ``package[extras]`` needs, transitively (their own extras are not followed)."""
    seen: set[str] = set()
    stack = [(package, extras)]
    while stack:
        name, wanted = stack.pop()
        project = _pyproject(name)["project"]
        requirements = list(project.get("dependencies", []))
        for extra in wanted:
            requirements += project.get("optional-dependencies", {}).get(extra, [])
        for requirement in requirements:
            dep = _requirement_name(requirement)
            if dep.startswith("ming-") and dep not in seen and dep != package:
                if dep not in PACKAGES:
                    raise ValueError(f"{name} depends on {dep}, which is not in packages/")
                seen.add(dep)
                stack.append((dep, ()))
    return sorted(seen)


def _install(session: nox.Session, packages: list[str], extras: tuple[str, ...] = ()) -> None:
    """Install ``packages`` (editable, each with ``extras`` where it defines them) and their ming-* closure."""
    targets: dict[str, tuple[str, ...]] = {}
    for package in packages:
        defined = _pyproject(package)["project"].get("optional-dependencies", {})
        own = tuple(e for e in extras if e in defined)
        targets[package] = own
        for dep in _ming_closure(package, own):
            targets.setdefault(dep, ())
    args = ["-c", CONSTRAINTS]
    for name, own in sorted(targets.items()):
        suffix = f"[{','.join(own)}]" if own else ""
        args += ["-e", f"{PACKAGES_DIR / name}{suffix}"]
    session.install(*args)


def _offline(session: nox.Session) -> dict[str, str]:
    # No hub downloads at run time: the whole project works from local directories.
    return {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}


for _package in PACKAGES:

    def _tests(session: nox.Session, package: str = _package) -> None:
        _install(session, [package], ("test",))
        session.run("pytest", str(PACKAGES_DIR / package / "tests"), *session.posargs, env=_offline(session))

    def _bench(session: nox.Session, package: str = _package) -> None:
        bench_dir = PACKAGES_DIR / package / "benchmarks"
        scripts = sorted(bench_dir.glob("bench_*.py"))
        if not scripts:
            session.error(f"{package} has no benchmarks/bench_*.py")
        _install(session, [package], ("test", "bench"))
        for script in scripts:
            session.run("python", str(script), *session.posargs, env=_offline(session))

    nox.session(name=f"tests-{_package}")(_tests)
    nox.session(name=f"bench-{_package}", default=False)(_bench)


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package contracts with every package installed together."""
    _install(session, PACKAGES, ("test",))
    session.run("pytest", str(ROOT / "integration_tests"), *session.posargs, env=_offline(session))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format --check and ruff check over the whole tree."""
    session.install("-c", CONSTRAINTS, "ruff")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the mkdocs site strictly (broken links, missing API objects and warnings fail)."""
    session.install("-c", CONSTRAINTS, "mkdocs", "mkdocs-material", "mkdocstrings[python]")
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """The main job: run every package's examples (each prints what it shows)."""
    _install(session, PACKAGES, ("examples",))
    for package in PACKAGES:
        for example in sorted((PACKAGES_DIR / package / "examples").glob("*.py")):
            session.log(f"--- {package}: {example.name}")
            session.run("python", str(example), env=_offline(session))
