"""Static checks of the Android project (android_demo/): versions, ABIs and structure.

Nothing here builds the app (that needs the Android SDK); see android_demo/README.md for what is
verified on this machine and what needs a device.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ANDROID = Path(__file__).resolve().parent.parent / "android_demo"
CATALOG = ANDROID / "gradle" / "libs.versions.toml"
APP_BUILD = ANDROID / "app" / "build.gradle.kts"
APP_MAIN = ANDROID / "app" / "src" / "main"
PUSH = ANDROID / "push_bundle.sh"


def _catalog() -> dict:
    with CATALOG.open("rb") as f:
        return tomllib.load(f)


def _gradle_scripts() -> list[Path]:
    scripts = sorted(p for p in ANDROID.rglob("*.gradle.kts") if "build" not in p.relative_to(ANDROID).parts)
    assert scripts, f"no *.gradle.kts under {ANDROID}"
    return scripts


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


def test_executorch_aar_version_matches_python_executorch():
    catalog = _catalog()
    lib = catalog["libraries"]["executorch-android"]
    assert lib["module"] == "org.pytorch:executorch-android"
    version = catalog["versions"][lib["version"]["ref"]]
    assert version == importlib.metadata.version("executorch"), (
        f"{CATALOG}: executorch-android {version} differs from the Python executorch "
        f"{importlib.metadata.version('executorch')} that writes the .pte files"
    )


def test_every_catalog_entry_takes_its_version_from_the_versions_table():
    catalog = _catalog()
    versions = catalog["versions"]
    for table in ("libraries", "plugins"):
        for alias, entry in catalog[table].items():
            assert isinstance(entry, dict), f"{table}.{alias}: use the table form with version.ref"
            coordinate = entry.get("module") or entry.get("id") or f"{entry.get('group')}:{entry.get('name')}"
            assert coordinate.count(":") <= 1, f"{table}.{alias}: version written into '{coordinate}'"
            version = entry.get("version")
            if version is None:
                assert table == "libraries" and coordinate.startswith("androidx.compose."), (
                    f"{table}.{alias} has no version (only Compose libraries take theirs from the BOM)"
                )
                continue
            assert isinstance(version, dict) and version.get("ref") in versions, (
                f"{table}.{alias}: version must be a version.ref into [versions]"
            )


def test_catalog_has_what_the_modules_use():
    catalog = _catalog()
    assert {"android-application", "kotlin-android", "kotlin-jvm", "kotlin-compose"} <= set(catalog["plugins"])
    assert catalog["libraries"]["junit"]["module"] == "junit:junit"
    assert catalog["versions"][catalog["libraries"]["junit"]["version"]["ref"]] == "4.13.2"
    # Every libs.xxx / libs.plugins.xxx reference in a build script exists in the catalog.
    libraries = {alias.replace("-", ".").replace("_", ".") for alias in catalog["libraries"]}
    plugins = {alias.replace("-", ".").replace("_", ".") for alias in catalog["plugins"]}
    for script in _gradle_scripts():
        text = _strip_comments(script.read_text())
        for ref in re.findall(r"\blibs\.plugins\.([\w.]+)", text):
            assert ref in plugins, f"{script}: libs.plugins.{ref} is not in {CATALOG.name}"
        for ref in re.findall(r"\blibs\.(?!plugins\.|versions\.|bundles\.)([\w.]+)", text):
            assert ref in libraries, f"{script}: libs.{ref} is not in {CATALOG.name}"


@pytest.mark.parametrize("script", _gradle_scripts(), ids=lambda p: str(p.relative_to(ANDROID)))
def test_build_scripts_hard_code_no_versions(script: Path):
    text = _strip_comments(script.read_text())
    plugin_versions = re.findall(r'\bid\s*\(\s*"[^"]+"\s*\)\s*version\b', text)
    assert not plugin_versions, f"{script}: plugin version written inline: {plugin_versions}"
    coordinates = re.findall(r'"([\w.\-]+:[\w.\-]+:[^"]+)"', text)
    assert not coordinates, f"{script}: dependency with an inline version: {coordinates}"
    assert "version =" not in text and "version(" not in text, f"{script}: inline version"


def test_min_sdk_and_abis():
    text = _strip_comments(APP_BUILD.read_text())
    min_sdk = re.search(r"\bminSdk\s*=\s*(\d+)", text)
    assert min_sdk, f"{APP_BUILD}: no minSdk"
    assert int(min_sdk.group(1)) >= 24
    filters = re.search(r"abiFilters\s*\+=\s*listOf\(([^)]*)\)", text)
    assert filters, f"{APP_BUILD}: no abiFilters += listOf(...)"
    assert sorted(re.findall(r'"([^"]+)"', filters.group(1))) == ["arm64-v8a", "x86_64"]
    assert len(re.findall(r"abiFilters", text)) == 1, "abiFilters set more than once"


def test_settings_include_app_and_textcore():
    text = _strip_comments((ANDROID / "settings.gradle.kts").read_text())
    includes = set(re.findall(r'"(:[\w-]+)"', " ".join(re.findall(r"include\(([^)]*)\)", text))))
    assert {":app", ":textcore"} <= includes


def test_push_bundle_script_is_executable_and_parses():
    assert PUSH.is_file()
    assert PUSH.stat().st_mode & 0o111, f"{PUSH} is not executable"
    text = PUSH.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(PUSH)], check=True)


def test_executorch_calls_live_in_one_kotlin_file():
    calls = re.compile(r"\bModule\.load\s*\(|\bTensor\.fromBlob\s*\(|import org\.pytorch\.executorch\.")
    files = sorted(p.relative_to(ANDROID) for p in APP_MAIN.rglob("*.kt") if calls.search(p.read_text()))
    assert len(files) == 1, f"ExecuTorch is called from {[str(f) for f in files]}; keep it in one class"


def test_no_jvm_toolchain_request_without_a_resolver():
    """A toolchain request (jvmToolchain, java.toolchain) fails where no matching JDK is installed,
    unless settings apply a resolver (foojay); without one, each module targets 17 explicitly."""
    settings = _strip_comments((ANDROID / "settings.gradle.kts").read_text())
    has_resolver = "org.gradle.toolchains.foojay-resolver" in settings
    for script in _gradle_scripts():
        text = _strip_comments(script.read_text())
        if not has_resolver:
            assert not re.search(r"\bjvmToolchain\s*\(|\btoolchain\s*\{|languageVersion\.set", text), (
                f"{script}: requests a JVM toolchain, but settings.gradle.kts applies no toolchain resolver"
            )
        if "libs.plugins.kotlin" in text and script.parent != ANDROID:
            assert "jvmTarget.set(JvmTarget.JVM_17)" in text, f"{script}: no jvmTarget 17"
            assert "sourceCompatibility = JavaVersion.VERSION_17" in text, f"{script}: no Java source 17"
            assert "targetCompatibility = JavaVersion.VERSION_17" in text, f"{script}: no Java target 17"


def test_wrapper_properties_pin_gradle_8_9():
    props = dict(
        line.split("=", 1)
        for line in (ANDROID / "gradle" / "wrapper" / "gradle-wrapper.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["distributionUrl"] == r"https\://services.gradle.org/distributions/gradle-8.9-bin.zip"
    assert re.fullmatch(r"[0-9a-f]{64}", props["distributionSha256Sum"])
