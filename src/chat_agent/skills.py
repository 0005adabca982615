"""Load the Worker's Skills from ``.claude/skills/<name>/SKILL.md`` (YAML front matter + body)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SKILLS_DIR = REPO_ROOT / ".claude" / "skills"
WORKER_SKILLS = ("summarize-ticket", "find-similar-cases", "escalate-with-context")


class SkillError(ValueError):
    """A SKILL.md file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    body: str
    path: Path

    def as_instructions(self) -> str:
        return f"## Skill: {self.name}\nWhen: {self.description}\n\n{self.body.strip()}\n"


def parse_skill(path: Path) -> Skill:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise SkillError(f"{path}: must start with '---' YAML front matter")
    parts = text.split("---", 2)
    if len(parts) < 3:
        raise SkillError(f"{path}: front matter is not closed with '---'")
    try:
        meta = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as exc:
        raise SkillError(f"{path}: front matter is not valid YAML: {exc}") from exc
    for key in ("name", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise SkillError(f"{path}: front matter needs a non-empty '{key}'")
    return Skill(meta["name"], meta["description"].strip(), parts[2], path)


def load_skills(names=WORKER_SKILLS, directory: Path = SKILLS_DIR) -> list[Skill]:
    skills = []
    for name in names:
        path = directory / name / "SKILL.md"
        if not path.exists():
            raise SkillError(f"Skill {name!r} not found at {path}")
        skills.append(parse_skill(path))
    return skills
