"""``tools/archcheck.py`` (run by ``make lint``): it fails on an import cycle or a stray mlflow import planted
in a copy of pipeline/, lists lazy imports without failing, and passes on the real pipeline/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "archcheck.py"


def archcheck(package: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(package), *flags], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of pipeline/ to plant faults in."""
    return shutil.copytree(
        ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )


def plant(path: Path, code: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code + "\n", encoding="utf-8")


def test_the_real_pipeline_has_no_cycle_and_mlflow_behind_its_door() -> None:
    done = archcheck(ROOT / "pipeline")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no cycle, mlflow behind its door" in done.stdout


def test_make_lint_runs_the_check() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "tools/archcheck.py pipeline" in lint


def test_a_cycle_through_an_import_inside_a_function_fails(tree: Path) -> None:
    # config is imported (through taxonomy and features) by model: importing model back closes a cycle
    plant(
        tree / "config.py",
        "def _tagger():\n    from pipeline.model import NewsTagger\n\n    return NewsTagger",
    )
    done = archcheck(tree)
    assert done.returncode == 1, done.stdout
    assert "import cycle among" in done.stdout and "pipeline.config" in done.stdout
    assert (
        "pipeline/config.py:" in done.stdout
        and "in _tagger(): from pipeline.model import NewsTagger" in done.stdout
    )


def test_a_cycle_through_a_relative_import_fails(tree: Path) -> None:
    plant(tree / "taxonomy.py", "from . import features  # noqa")
    done = archcheck(tree)
    assert done.returncode == 1 and "pipeline.features" in done.stdout and "pipeline.taxonomy" in done.stdout


@pytest.mark.parametrize(
    "code",
    [
        "import mlflow",
        "import mlflow.pyfunc as pyfunc",
        "def load():\n    from mlflow import MlflowClient\n\n    return MlflowClient",
        "def load():\n    import importlib\n\n    return importlib.import_module('mlflow.sklearn')",
        "def load():\n    return __import__('mlflow')",
    ],
)
def test_mlflow_imported_in_model_code_fails(tree: Path, code: str) -> None:
    plant(tree / "model.py", code)
    done = archcheck(tree)
    assert done.returncode == 1, done.stdout
    assert "mlflow imported outside pyfunc.py and tracking.py: pipeline/model.py:" in done.stdout


def test_mlflow_in_tracking_and_pyfunc_is_allowed(tree: Path) -> None:
    plant(tree / "tracking.py", "import mlflow.pyfunc")
    plant(tree / "pyfunc.py", "def _m():\n    import mlflow\n\n    return mlflow")
    assert archcheck(tree).returncode == 0


def test_lazy_imports_are_listed_but_do_not_fail(tree: Path) -> None:
    plant(
        tree / "model.py",
        "def _lazy():\n    from pipeline.taxonomy import country_regions\n\n    return country_regions",
    )
    quiet = archcheck(tree)
    assert quiet.returncode == 0 and "lazy import" not in quiet.stdout
    done = archcheck(tree, "--list-lazy")
    assert done.returncode == 0
    assert "lazy import: pipeline/model.py:" in done.stdout
    assert "in _lazy(): from pipeline.taxonomy import country_regions" in done.stdout
    assert "pipeline/cli.py" not in done.stdout, "cli.py imports its stages lazily on purpose"


def test_a_small_clean_package_passes_and_a_folder_that_is_no_package_is_refused(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("import json\n")
    (pkg / "top.py").write_text("from pkg.sub import leaf\nfrom . import sub\n")
    assert archcheck(pkg).returncode == 0
    assert archcheck(tmp_path).returncode == 2
