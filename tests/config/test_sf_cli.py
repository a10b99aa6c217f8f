"""The Salesforce CLI (``sf``) reads ``config/salesforce`` as the admin's deploy will.

``sf project convert source`` turns the source format into the Metadata API format (what
``sf project deploy start`` sends), failing on a file it cannot place; ``sf project generate
manifest`` lists the components it finds, which must be what ``manifest/package.xml`` names (a
``--manifest`` deploy sends exactly those). Both run in a copy of the project, offline: neither
needs an org.

Without ``sf`` on PATH the tests are skipped, except in CI (``CI=true``), which installs it
(``.ci/run``) and where a missing ``sf`` fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree

ROOT = Path(__file__).resolve().parents[2]
SALESFORCE = ROOT / "config" / "salesforce"
Q = "{http://soap.sforce.com/2006/04/metadata}"
TIMEOUT = 300  # seconds; both commands take a few seconds

# Never prompt, never phone home, never look for a newer version.
QUIET = {
    "SF_DISABLE_TELEMETRY": "true",
    "SF_AUTOUPDATE_DISABLE": "true",
    "SF_SKIP_NEW_VERSION_CHECK": "true",
    "SF_HIDE_RELEASE_NOTES": "true",
    "SF_HIDE_RELEASE_NOTES_FOOTER": "true",
    "SF_DISABLE_LOG_FILE": "true",
    "SF_USE_PROGRESS_BAR": "false",
    "SF_CONTAINER_MODE": "true",
}


@pytest.fixture(scope="module")
def sf() -> str:
    found = shutil.which("sf")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the Salesforce CLI (sf) is not on PATH; .ci/run installs it")
        pytest.skip("the Salesforce CLI (sf) is not on PATH: npm install -g @salesforce/cli")
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "salesforce"
    shutil.copytree(SALESFORCE, copy)
    return copy


def run(sf: str, project: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **QUIET, "HOME": str(home)}  # its logs and config stay in the test
    return subprocess.run(
        [sf, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def components(path: Path) -> tuple[dict[str, list[str]], str]:
    """A manifest's members by type (sorted) and its API version."""
    root: Element = ElementTree.parse(path).getroot()
    assert root.tag == Q + "Package"
    members: dict[str, list[str]] = {}
    for types in root.iter(Q + "types"):
        name = types.findtext(Q + "name") or ""
        assert name not in members, f"{path}: {name} is listed twice"
        members[name] = sorted(item.text or "" for item in types.iter(Q + "members"))
    return members, root.findtext(Q + "version") or ""


def test_sf_converts_the_source_for_the_metadata_api(
    sf: str, project: Path, tmp_path: Path
) -> None:
    output = tmp_path / "mdapi"
    result = run(
        sf, project, tmp_path, "project", "convert", "source",
        "--root-dir", "force-app", "--output-dir", str(output), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Every component the manifest names is in the converted package, and nothing else.
    converted, version = components(output / "package.xml")
    assert (converted, version) == components(SALESFORCE / "manifest" / "package.xml")
    assert (output / "objects" / "Billing_Invoice__c.object").exists()


def test_the_shipped_manifest_is_the_one_sf_generates(
    sf: str, project: Path, tmp_path: Path
) -> None:
    output = tmp_path / "manifest"
    result = run(
        sf, project, tmp_path, "project", "generate", "manifest",
        "--source-dir", "force-app", "--output-dir", str(output), "--name", "package.xml",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    generated = components(output / "package.xml")
    shipped = components(SALESFORCE / "manifest" / "package.xml")
    assert shipped == generated, (
        "config/salesforce/manifest/package.xml differs from what `sf project generate manifest "
        "--source-dir force-app` lists: regenerate it (see config/salesforce/README.md)"
    )
