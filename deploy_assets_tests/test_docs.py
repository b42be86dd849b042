"""The README and docs/ cannot rot: their runnable examples run, their links resolve, the configuration page shows
every setting, and only the settings module reads the environment.

Convention (docs/development.md, "Runnable examples in the docs"): a fenced block opened with ```` ```bash runnable ````
is run with `bash -euo pipefail` in a temporary working copy of the repo; an ```` ```output ```` block right after
it lists lines that must appear in what it printed. ```` ```bash runnable servers ```` marks a slow block (a Dagster
CLI call): its test carries the `servers` marker.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
VENV = Path(sys.prefix)  # the virtualenv running the tests: the working copy's `.venv`

FENCE = re.compile(r"^(`{3,})(.*)$")
# [text](target): not images' alt text, not inside code (code blocks are stripped first, inline code below)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    end: int  # 1-based line of the closing fence
    info: str
    body: str


@dataclass(frozen=True)
class Example:
    block: Block
    expected: tuple[str, ...]
    slow: bool

    @property
    def id(self) -> str:
        return f"{self.block.page.relative_to(REPO)}:{self.block.line}"


def fenced_blocks(page: Path) -> list[Block]:
    blocks, lines = [], page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, info, start, body = opening.group(1), opening.group(2).strip(), index, []
        index += 1
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        blocks.append(Block(page, start + 1, index + 1, info, "\n".join(body) + "\n"))
        index += 1
    return blocks


def runnable_examples() -> list[Example]:
    examples = []
    for page in PAGES:
        blocks = fenced_blocks(page)
        for position, block in enumerate(blocks):
            words = block.info.split()
            if words[:2] != ["bash", "runnable"]:
                continue
            following = blocks[position + 1] if position + 1 < len(blocks) else None
            expected = ()
            if following is not None and following.info == "output":
                expected = tuple(line.strip() for line in following.body.splitlines() if line.strip())
            examples.append(Example(block, expected, slow="servers" in words[2:]))
    return examples


EXAMPLES = runnable_examples()


def working_copy(tmp_path: Path) -> Path:
    """The repo's top-level entries linked into a fresh folder, `.venv` the running virtualenv: the examples'
    `.venv/bin/...` paths work, and whatever they write lands in the temporary folder."""
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {".venv", ".data", ".git"}:
            (root / entry.name).symlink_to(entry)
    (root / ".venv").symlink_to(VENV)
    return root


def example_environment(tmp_path: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DEPLOY_ASSETS_", "MLFLOW_", "DAGSTER_", "AWS_ENDPOINT_URL", "PYTEST_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        PATH=os.pathsep.join([str(VENV / "bin"), os.environ.get("PATH", "")]),
        COLUMNS="80",  # argparse wraps --help at the terminal's width
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        DEPLOY_ASSETS_DATA_URI=str(tmp_path / "data"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        DEPLOY_ASSETS_PREDICTIONS_DB=f"duckdb:///{tmp_path / 'predictions.duckdb'}",
    )
    (tmp_path / "dagster_home").mkdir()
    return env


def _param(example: Example):
    marks = [pytest.mark.servers] if example.slow else []
    return pytest.param(example, id=example.id, marks=marks)


def test_the_docs_have_runnable_examples():
    assert len(EXAMPLES) >= 5, [example.id for example in EXAMPLES]


@pytest.mark.parametrize("example", [_param(example) for example in EXAMPLES])
def test_runnable_example(example: Example, tmp_path):
    body = example.block.body
    assert "pytest" not in body and "scripts/test.sh" not in body, "an example must not run the tests"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body],
        cwd=working_copy(tmp_path), env=example_environment(tmp_path),
        capture_output=True, text=True, timeout=120,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, f"{example.id} exited {result.returncode}:\n{body}\n{printed[-3000:]}"
    missing = [line for line in example.expected if line not in printed]
    assert not missing, f"{example.id}: not in the output: {missing}\n{printed[-3000:]}"


# --- links -----------------------------------------------------------------------------------------------------------


def prose(page: Path) -> str:
    """The page without its fenced blocks (their lines kept empty) and without inline code."""
    lines = page.read_text().splitlines()
    fenced = {line - 1 for block in fenced_blocks(page) for line in range(block.line, block.end + 1)}
    return "\n".join("" if number in fenced else INLINE_CODE.sub("", line) for number, line in enumerate(lines))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = INLINE_CODE.sub(lambda match: match.group(0).strip("`"), heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    fenced = {line for block in fenced_blocks(page) for line in range(block.line, block.end + 1)}
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and number not in fenced:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [
        target for target in LINK.findall(prose(page))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(REPO)) for page in PAGES])
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no heading #{anchor} in {destination.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)}
    unlinked = [str(page.relative_to(REPO)) for page in DOCS.glob("*.md") if page.resolve() not in linked]
    assert not unlinked, f"README.md links none of {unlinked}"


def test_the_readme_stays_a_five_minute_read():
    lines = README.read_text().count("\n")
    assert lines < 150, f"README.md has {lines} lines: move the reference into docs/"
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert command in README.read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci, "CI must run the README's test command"


# --- configuration ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Settings", "ScoreMonthSettings", "ServingSettings"])
def test_the_configuration_page_shows_every_setting_with_its_default(name):
    from deploy_assets import settings

    table = settings.configuration_table(getattr(settings, name))
    assert table in (DOCS / "configuration.md").read_text(), f"docs/configuration.md should hold {name}'s table:\n{table}"


def test_every_project_variable_the_code_names_is_a_setting():
    from deploy_assets import settings

    code = "\n".join(path.read_text() for path in (REPO / "deploy_assets").rglob("*.py"))
    named = set(re.findall(r"[\"'](DEPLOY_ASSETS_[A-Z0-9_]*[A-Z0-9])[\"']", code))
    known = set()
    for settings_class in (settings.Settings, settings.ScoreMonthSettings, settings.ServingSettings):
        for field in settings.variables(settings_class).values():
            known |= {field.metadata["variable"], *field.metadata["also"]}
    assert "DEPLOY_ASSETS_DATA_URI" in named and not named - known, sorted(named - known)


# Reads of the environment outside the settings module: none, but one that puts back what MLflow wrote.
ENVIRONMENT_READS_ALLOWED = {
    # `_fluent_api` restores MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI as they were before mlflow.set_tracking_uri
    # wrote them: it reads no setting.
    "deploy_assets/core/registry.py": 3,
}


def environment_reads(tree: ast.AST) -> int:
    """`os.environ`, `os.getenv`, `os.putenv`, `os.environb` and their `from os import …` forms."""
    names = {"environ", "getenv", "environb", "putenv"}
    reads = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names and getattr(node.value, "id", None) == "os":
            reads += 1
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and names & {a.name for a in node.names}:
            reads += 1
    return reads


def test_no_module_but_the_settings_reads_the_environment():
    found = {}
    for path in sorted((REPO / "deploy_assets").rglob("*.py")):
        name = str(path.relative_to(REPO))
        reads = environment_reads(ast.parse(path.read_text()))
        if reads and name != "deploy_assets/settings.py":
            found[name] = reads
    assert found == ENVIRONMENT_READS_ALLOWED


def test_the_environment_scan_sees_every_form_of_reading_it():
    forms = ["os.environ['X']", "os.environ.get('X')", "os.getenv('X')", "from os import environ", "from os import getenv"]
    assert [environment_reads(ast.parse(form)) for form in forms] == [1, 1, 1, 1, 1]
