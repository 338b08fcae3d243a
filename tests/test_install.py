"""Installed as a tool: where files are found, prompt overrides, --version, doctor, collection names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot import locations
from bot.config import DEFAULT_COLLECTION, BadCollectionName, Settings, check_collection_name
from bot.llm import LLMUnavailable, load_prompt
from tests.conftest import ROOT, SOURCES, free_port, run_cli


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PAPERBOT_STORE_DIR": str(tmp_path / "store")} | extra


def test_clone_layout_uses_the_top_level_folders():
    # These tests run from the clone: the canonical folders are used, the store stays in the clone.
    assert locations.running_from_checkout()
    assert locations.shipped_sources() == ROOT / "index" / "sources" == SOURCES
    assert locations.shipped_dir("prompts") == ROOT / "prompts"
    assert locations.default_store_dir() == ROOT / "index" / "store"
    assert Settings(_env_file=None).base_sources == SOURCES


def test_only_the_default_collection_holds_the_shipped_corpus(tmp_path: Path):
    assert Settings(collection="thesis").base_sources is None
    assert Settings(collection=DEFAULT_COLLECTION).base_sources == SOURCES
    assert Settings(collection="thesis", sources_dir=tmp_path).base_sources == tmp_path


def test_user_prompts_override_the_shipped_ones_file_by_file(tmp_path: Path):
    shipped = (ROOT / "prompts" / "answer.txt").read_text(encoding="utf-8")
    assert load_prompt("answer", Settings(prompts_dir=None)) == shipped
    (tmp_path / "answer.txt").write_text("Mine: {question}\n{sources}", encoding="utf-8")
    mine = Settings(prompts_dir=tmp_path)
    assert load_prompt("answer", mine).startswith("Mine:")
    # A prompt the user folder lacks comes from the shipped files.
    assert load_prompt("condense", mine) == (ROOT / "prompts" / "condense.txt").read_text(encoding="utf-8")
    with pytest.raises(LLMUnavailable, match="does not exist"):
        load_prompt("answer", Settings(prompts_dir=tmp_path / "nowhere"))
    with pytest.raises(LLMUnavailable, match="no_such_prompt.txt is missing"):
        load_prompt("no_such_prompt", mine)


@pytest.mark.parametrize(
    "name", ["ab", "-thesis", "thesis-", "my thesis", "a..b", "127.0.0.1", "x" * 60, "thesis_manifest", "thèse"]
)
def test_bad_collection_names_are_rejected(name: str):
    with pytest.raises(BadCollectionName, match="bad collection name"):
        check_collection_name(name)


@pytest.mark.parametrize("name", ["paperbot", "thesis", "my-thesis.v2", "A_1"])
def test_good_collection_names(name: str):
    assert check_collection_name(name) == name


def test_bad_collection_name_is_one_line(tmp_path: Path, paperbot_main):
    code, _, err = paperbot_main("stats", "--collection", "my thesis", env=clean_env(tmp_path))
    assert code == 2  # a usage error: bad option or setting
    assert err.strip().splitlines() == [
        "paperbot: error: bad collection name 'my thesis': use 3-54 letters, digits, '.', '_' or '-', "
        "starting and ending with a letter or digit"
    ]
    code, _, err = paperbot_main("stats", env=clean_env(tmp_path, PAPERBOT_COLLECTION="a..b"))
    assert code == 2
    assert err.strip().splitlines() == [
        "paperbot: error: PAPERBOT_COLLECTION: bad collection name 'a..b': no '..' and not an IP address"
    ]
    assert not (tmp_path / "store").exists()


def test_version(tmp_path: Path):
    # A new process: --version answers before any command runs.
    out = run_cli(dict(os.environ, **clean_env(tmp_path)), "--version")
    assert out.returncode == 0, out.stderr
    from bot.doctor import version

    assert out.stdout.strip() == f"paperbot {version()}"


def test_doctor_reports_places_model_and_a_reachable_llm(tmp_path: Path, fake, paperbot_main):
    env = clean_env(tmp_path, OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="sk-doctor-secret", PAPERBOT_LLM_MODEL="m")
    code, out, err = paperbot_main("doctor", "--json", env=env)
    assert code == 0, err
    assert "sk-doctor-secret" not in out + err
    report = json.loads(out)
    assert report["layout"] == "clone"
    assert report["store"] == str(tmp_path / "store")
    assert report["index"] is None  # not built, and the doctor builds nothing
    assert report["base_sources"] == str(SOURCES) and report["prompts"] == str(ROOT / "prompts")
    assert [f["ok"] for f in report["model_files"]] == [True, True, True]
    assert all(len(f["sha256"]) == 64 for f in report["model_files"])
    assert report["llm"] | {"detail": None} == {
        "configured": True,
        "model": "m",
        "base_url": fake.url.rstrip("/"),
        "reachable": True,
        "detail": None,
    }
    assert report["llm"]["detail"].startswith("HTTP 200")
    code, text, err = paperbot_main("doctor", env=env)
    assert code == 0, err
    assert f"m at {fake.url.rstrip('/')}: reachable (HTTP 200" in text
    assert "not built yet" in text


def test_doctor_says_when_the_llm_is_unreachable_or_unset(tmp_path: Path, paperbot_main):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    env = clean_env(tmp_path, OPENAI_BASE_URL=closed, PAPERBOT_DOCTOR_TIMEOUT="2")
    report = json.loads(paperbot_main("doctor", "--json", env=env)[1])
    assert (report["llm"]["configured"], report["llm"]["reachable"]) == (True, False)
    assert report["llm"]["detail"].startswith("ConnectError")
    report = json.loads(paperbot_main("doctor", "--json", env=clean_env(tmp_path))[1])
    assert (report["llm"]["configured"], report["llm"]["reachable"]) == (False, None)


def test_every_bot_package_ships_in_the_wheel():
    # pyproject lists the packages explicitly (the data folders are mapped in): a new subpackage
    # must be listed too, or the installed tool lacks it.
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "bot").rglob("__init__.py")}
    assert found <= listed
