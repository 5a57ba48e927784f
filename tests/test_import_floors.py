"""Imports point down: every module stands on a floor, and imports nothing from a floor above its own.

The floors, from the ground up (a module takes the floor of the longest name below that it falls under):
1. what every part builds on and that imports nothing of the project above it: the Lambda code and the
   media code it shares (lambdas), the workflow and its reader (statemachine), the shared settings
   (settings), the tables every command prints (text_tables), the measured figures (calibration), the
   bill counters (metering) and the test streams (sample_streams);
2. the after, the service (monolith);
3. the stacks that deploy the before and the after (infra);
4. the cost model, which prices what the stacks deploy (cost_model);
5. the commands that drive all of it: the CDK app (app) and the demo (demo). The calibration file is
   measured by `python -m monolith calibrate` (floor 2); the calibration package only reads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from import_graph import REPO, first_party_imports, first_party_packages, modules

FLOORS: dict[str, int] = {
    "lambdas": 1,
    "statemachine": 1,
    "settings": 1,
    "text_tables": 1,
    "calibration": 1,
    "metering": 1,
    "sample_streams": 1,
    "monolith": 2,
    "infra": 3,
    "cost_model": 4,
    "app": 5,
    "demo": 5,
}


def floor_of(module: str, floors: dict[str, int]) -> int:
    """The floor of the longest name in `floors` that `module` is or falls under."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in floors:
            return floors[name]
    raise KeyError(f"{module} stands on no floor: give it one in FLOORS")


def upward_imports(root: Path, floors: dict[str, int], packages: list[str],
                   scripts: tuple[str, ...] = ()) -> list[str]:
    """Every import from a lower floor to a higher one, as `file:line: a (floor) imports b (floor)`."""
    known = modules(root, packages)
    for script in scripts:
        known[script] = root / f"{script}.py"
    found = []
    for name, path in sorted(known.items()):
        own = floor_of(name, floors)
        for target, line in first_party_imports(path, root, known):
            if floor_of(target, floors) > own:
                found.append(f"{path.relative_to(root)}:{line}: {name} (floor {own}) imports {target} "
                             f"(floor {floor_of(target, floors)})")
    return found


def test_every_installed_package_stands_on_a_floor() -> None:
    # Given the packages pyproject installs, When each is looked up, Then each has its floor
    packages = first_party_packages()
    assert {"lambdas", "monolith", "infra", "cost_model", "statemachine", "settings"} <= set(packages)
    assert sorted(name for name in FLOORS if "." not in name and name != "app") == packages


def test_every_name_on_a_floor_is_a_module_of_the_project() -> None:
    # Given the floors, Then each name is a module or package that exists (a moved one is taken off)
    known = modules(REPO, first_party_packages()) | {"app": REPO / "app.py"}
    assert [name for name in FLOORS if name not in known] == []


def test_imports_point_down() -> None:
    # Given every module of the project and the CDK app, When their imports are read
    upward = upward_imports(REPO, FLOORS, first_party_packages(), scripts=("app",))
    # Then none imports from a floor above its own
    assert upward == []


@pytest.fixture
def small_house(tmp_path: Path) -> Path:
    """ground/ (floor 1) and top/ (floor 2): ground imports top inside a function, relatively too."""
    (tmp_path / "ground").mkdir()
    (tmp_path / "top").mkdir()
    (tmp_path / "ground" / "__init__.py").write_text("")
    (tmp_path / "ground" / "base.py").write_text(
        "import json\n\n\ndef late():\n    from top.cli import run\n    return run\n")
    (tmp_path / "ground" / "other.py").write_text("from .base import late\nfrom . import base\n")
    (tmp_path / "top" / "__init__.py").write_text("")
    (tmp_path / "top" / "cli.py").write_text("from ground.base import late\n\nrun = late\n")
    return tmp_path


def test_an_import_up_a_floor_is_found_even_inside_a_function(small_house: Path) -> None:
    # Given a ground-floor module that imports the top floor inside a function
    # When the small house is checked
    upward = upward_imports(small_house, {"ground": 1, "top": 2}, ["ground", "top"])
    # Then that one import is reported with its line, and the downward and relative ones are not
    assert upward == ["ground/base.py:5: ground.base (floor 1) imports top.cli (floor 2)"]


def test_a_module_given_its_own_floor_is_held_to_it(small_house: Path) -> None:
    # Given the same house, with ground.base raised to the top floor by name
    upward = upward_imports(small_house, {"ground": 1, "ground.base": 2, "top": 2}, ["ground", "top"])
    # Then ground.other's relative imports of ground.base now run up (line 1: the module; line 2: `base`)
    assert upward == [
        "ground/other.py:1: ground.other (floor 1) imports ground.base (floor 2)",
        "ground/other.py:2: ground.other (floor 1) imports ground.base (floor 2)",
    ]


def test_a_module_on_no_floor_is_refused() -> None:
    with pytest.raises(KeyError, match="stands on no floor"):
        floor_of("nowhere.module", FLOORS)
