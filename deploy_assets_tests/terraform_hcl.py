"""What the terraform tests share: the repository's paths and the parsed HCL of terraform/ (python-hcl2).

Not a test module: `root()` and `bucket_module()` give the blocks of terraform/ and of its s3_bucket module, read
once per process; `_block`, `_tfvars` and `_as_list` reach into python-hcl2's shapes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TERRAFORM = REPO / "terraform"
DOCKERFILE = REPO / "Dockerfile"


def _unquote(text: str) -> str:
    # python-hcl2 >= 7 keeps the quotes of string literals ("\"FARGATE\""); references stay "${...}".
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _clean(value):
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


class Module:
    """The blocks of one terraform directory: {(type, name): body} for resources and data, and the rest."""

    def __init__(self, directory: Path):
        import hcl2

        self.directory = directory
        self.resources: dict[tuple[str, str], dict] = {}
        self.data: dict[tuple[str, str], dict] = {}
        self.variables: dict[str, dict] = {}
        self.modules: dict[str, dict] = {}
        self.locals: dict[str, object] = {}
        self.files: list[Path] = sorted(directory.glob("*.tf"))
        for path in self.files:
            with path.open() as handle:
                parsed = _clean(hcl2.load(handle))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in parsed.get(kind, []):
                    for block_type, named in block.items():
                        for name, body in named.items():
                            target[(block_type, name)] = body
            for block in parsed.get("variable", []):
                self.variables.update(block)
            for block in parsed.get("module", []):
                self.modules.update(block)
            for block in parsed.get("locals", []):
                self.locals.update(block)

    def of_type(self, block_type: str) -> dict[str, dict]:
        return {name: body for (kind, name), body in self.resources.items() if kind == block_type}

    def referencing(self, block_type: str, attribute: str, target: str) -> list[dict]:
        """Resources of `block_type` whose `attribute` refers to `target` (e.g. aws_s3_bucket.this)."""
        return [body for body in self.of_type(block_type).values() if f"{target}." in str(body.get(attribute, ""))]


@cache
def root() -> Module:
    return Module(TERRAFORM)


@cache
def bucket_module() -> Module:
    return Module(TERRAFORM / "modules" / "s3_bucket")


def all_modules() -> list[Module]:
    return [root(), bucket_module()]


def _block(body: dict, name: str) -> dict:
    """The first nested block `name` (python-hcl2 gives nested blocks as lists)."""
    value = body[name]
    return value[0] if isinstance(value, list) else value


def _tfvars(name: str) -> dict:
    import hcl2

    with (TERRAFORM / "envs" / f"{name}.tfvars").open() as handle:
        return _clean(hcl2.load(handle))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]
