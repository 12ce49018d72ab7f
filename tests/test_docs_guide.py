"""docs/guide stays true: every operation of the OpenAPI document has a section with a curl and
an SDK example, every SDK method it names exists (and implements that operation), and the
curl examples of the main routes are run, as written, against a live `mediakeep serve`. Every
page has TypeScript examples (```ts), which are type-checked against the built
`@mediakeep/client` and run with Node against a live server.

A section is a `### ` heading naming its operations in backticks (`` `GET /api/v1/media` ``);
its first ```bash block that calls curl is its curl example, its first ```python block its SDK
example, and the first bold status (`**201**`) the documented success status.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mediakeep.app import create_app
from mediakeep.client import Client
from mediakeep.client._core import Route
from mediakeep.config import Settings
from mediakeep.webhooks.signing import sign
from tests import mediagen
from tests.fixtures.services import free_port
from tests.live import LiveServer, base_env
from tests.sdk_typescript.conftest import BuiltSdk, built_sdk

__all__ = ["built_sdk"]

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = DOCS / "guide"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OPERATION = re.compile(rf"`({'|'.join(METHODS)}) (/[^`\s]*)`")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
STATUS = re.compile(r"\*\*(\d{3})\*\*")
SDK_CALL = re.compile(r"\bclient\.(\w+)\b")


@dataclass
class Section:
    page: str
    heading: str
    operations: list[str]
    body: str
    blocks: list[tuple[str, str]] = field(default_factory=list)

    @property
    def curl(self) -> str | None:
        return next((c for lang, c in self.blocks if lang == "bash" and "curl" in c), None)

    @property
    def python(self) -> str | None:
        return next((c for lang, c in self.blocks if lang == "python"), None)

    @property
    def status(self) -> int | None:
        found = STATUS.search(self.body)
        return int(found.group(1)) if found else None


def shape(method: str, path: str) -> str:
    """`METHOD /path` with every path parameter written `{}` (names differ between docs)."""
    return f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"


def guide_sections() -> list[Section]:
    sections: list[Section] = []
    for page in sorted(GUIDE.glob("*.md")):
        text = page.read_text()
        # Split on level-2/3 headings; only ### headings that name operations are sections.
        parts = re.split(r"^(#{2,3} .*)$", text, flags=re.M)
        for heading, body in zip(parts[1::2], parts[2::2], strict=True):
            if not heading.startswith("### "):
                continue
            operations = [shape(m, p) for m, p in OPERATION.findall(heading)]
            if operations:
                blocks = [(lang, code) for lang, code in FENCE.findall(body)]
                sections.append(Section(page.name, heading, operations, body, blocks))
    return sections


def sections_by_operation() -> dict[str, Section]:
    found: dict[str, Section] = {}
    for section in guide_sections():
        for operation in section.operations:
            assert operation not in found, f"{operation} has two sections ({section.heading})"
            found[operation] = section
    return found


def served_operations(tmp_path: Path) -> set[str]:
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    return {
        shape(method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method.upper() in METHODS
    }


def sdk_endpoints(name: str) -> set[str]:
    attribute = getattr(Client, name, None)
    if isinstance(attribute, Route):
        return {shape(*endpoint.split(" ", 1)) for endpoint in attribute.endpoints}
    return set()


def python_blocks() -> Iterator[tuple[str, str]]:
    own_pages = [DOCS / name for name in ("quickstart.md", "cli.md", "web.md")]
    for page in [*sorted(GUIDE.glob("*.md")), *(p for p in own_pages if p.exists())]:
        for lang, code in FENCE.findall(page.read_text()):
            if lang == "python":
                yield page.name, code


# ---------------------------------------------------------------- the guide covers the API


def test_every_operation_has_a_section_with_curl_sdk_and_status(tmp_path: Path) -> None:
    sections = sections_by_operation()
    served = served_operations(tmp_path)
    missing = sorted(served - sections.keys())
    assert not missing, f"operations without a section in docs/guide: {missing}"
    stale = sorted(sections.keys() - served)
    assert not stale, f"docs/guide documents operations the server does not have: {stale}"
    for operation in sorted(served):
        section = sections[operation]
        where = f"{section.page}: {section.heading}"
        assert section.curl, f"{where}: no ```bash block with a curl example"
        assert section.python, f"{where}: no ```python block with an SDK example"
        assert "client." in section.python, f"{where}: the SDK example calls no client method"
        assert section.status, f"{where}: no documented **status**"


def test_each_sdk_example_calls_the_method_of_its_operation(tmp_path: Path) -> None:
    for operation, section in sections_by_operation().items():
        assert section.python is not None
        called = set(SDK_CALL.findall(section.python))
        implementing = {name for name in called if operation in sdk_endpoints(name)}
        assert implementing, (
            f"{section.page}: {section.heading}: the SDK example calls {sorted(called)}, "
            f"none of which is the SDK method of {operation}"
        )


def test_every_sdk_method_the_docs_name_exists() -> None:
    named = {(page, name) for page, code in python_blocks() for name in SDK_CALL.findall(code)}
    assert named
    unknown = sorted((page, name) for page, name in named if not hasattr(Client, name))
    assert not unknown, f"SDK methods named in the docs that Client lacks: {unknown}"
    private = sorted(name for _, name in named if name.startswith("_"))
    assert not private, f"the docs use private SDK names: {private}"


def test_python_examples_are_valid_python() -> None:
    for page, code in python_blocks():
        try:
            ast.parse(code)
        except SyntaxError as exc:
            pytest.fail(f"{page}: a python block does not parse: {exc}\n{code}")


def test_the_webhook_verification_snippet_accepts_real_signatures_only() -> None:
    text = (GUIDE / "events.md").read_text()
    snippet = next(code for lang, code in FENCE.findall(text) if "def verify(" in code)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "events.md", "exec"), namespace)  # noqa: S102 - our own docs
    verify = namespace["verify"]
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = json.dumps({"id": "evt_1", "type": "media.ready"}).encode()
    stamp = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, "evt_1", stamp, body),
    }
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    assert not verify(other, headers, body)
    old = stamp - 3600
    stale = headers | {
        "webhook-timestamp": str(old),
        "webhook-signature": sign(secret, "evt_1", old, body),
    }
    assert not verify(secret, stale, body)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_links_between_the_pages_resolve() -> None:
    pages = [*GUIDE.glob("*.md"), *(DOCS / n for n in ("quickstart.md", "cli.md", "web.md"))]
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_the_readme_links_every_docs_page() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    linked = set(LINK.findall(readme))
    pages = {f"docs/{p.name}" for p in DOCS.glob("*.md")} | {"docs/guide/README.md"}
    assert not sorted(pages - linked), (
        f"docs pages missing from README.md: {sorted(pages - linked)}"
    )


# ---------------------------------------------------------------- the curl examples run


def first_command(block: str) -> str:
    """The block's first curl command, its continuation lines joined (comments skipped)."""
    lines: list[str] = []
    for line in block.splitlines():
        if not lines and (not line.strip().startswith("curl")):
            continue
        lines.append(line)
        if not line.rstrip().endswith("\\"):
            break
    assert lines, f"no curl command in:\n{block}"
    return "\n".join(lines)


@dataclass
class CurlRunner:
    """Runs a section's curl example with bash, as a reader would, after exporting the
    variables the guide uses ($MEDIAKEEP_URL, $TOKEN, $MEDIA_ID, ...)."""

    sections: dict[str, Section]
    workdir: Path
    env: dict[str, str]
    ran: list[str] = field(default_factory=list)

    def run(self, operation: str, *, whole: bool = False, **variables: str) -> Any:
        section = self.sections[operation]
        assert section.curl is not None
        assert section.status is not None
        # The first curl command, or with `whole` the block as written (steps before curl).
        command = section.curl if whole else first_command(section.curl)
        body_file = self.workdir / "answer.body"
        # The reader's curl, told to keep the body aside and print the status.
        wrapper = 'curl() { command curl -sS -o "$MK_BODY" -w "%{http_code}" "$@"; }\n'
        result = subprocess.run(
            ["bash", "-c", wrapper + command],
            env=self.env | variables | {"MK_BODY": str(body_file)},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        status = result.stdout.strip()[-3:]
        body = body_file.read_bytes() if body_file.exists() else b""
        assert status == str(section.status), (
            f"{section.page}: {operation}: documented {section.status}, got {status!r}\n"
            f"$ {command}\n{result.stderr}\n{body[:2000]!r}"
        )
        self.ran.append(operation)
        try:
            return json.loads(body) if body else None
        except ValueError:
            return body


@pytest.fixture
def live_auth_server(tmp_path: Path) -> Iterator[LiveServer]:
    """`mediakeep serve` with authentication on (the guide's examples sign in)."""
    data_dir = tmp_path / "server" / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    env = base_env() | {
        "MEDIA_DATA_DIR": str(data_dir),
        "MEDIA_API_HOST": "127.0.0.1",
        "MEDIA_API_PORT": str(port),
        "AUTH_SECRET_KEY": "docs-guide-secret-" + "x" * 40,
        # Production-cost Argon2id would dominate this test; the hash is still Argon2id.
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "MEDIA_SWEEP_INTERVAL": "1h",
        # No HLS ladder for the test clip: nothing here reads it, and it would compete for CPU.
        "MEDIA_VIDEO_AUTO_STREAM": "false",
        "MEDIA_LOG_LEVEL": "WARNING",
    }
    server = LiveServer(
        data_dir=data_dir, env=env, port=port, log_path=data_dir.parent / "server.log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_curl_examples_run_against_a_live_server(
    live_auth_server: LiveServer, tmp_path: Path
) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        pytest.skip("curl and bash are needed to run the guide's shell examples")
    workdir = tmp_path / "reader"
    workdir.mkdir()
    (workdir / "cat.jpg").write_bytes(mediagen.jpeg(640, 480))
    (workdir / "dog.png").write_bytes(mediagen.png(200, 100))
    (workdir / "clip.mp4").write_bytes(mediagen.mp4(3.0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA", "TOKEN"))}
    runner = CurlRunner(
        sections_by_operation(), workdir, env | {"MEDIAKEEP_URL": live_auth_server.base_url}
    )
    run = runner.run

    user = run("POST /api/v1/auth/register")
    tokens = run("POST /api/v1/auth/login")
    runner.env |= {"TOKEN": tokens["access_token"]}
    assert run("GET /api/v1/users/me")["id"] == user["id"]
    refreshed = run("POST /api/v1/auth/refresh", REFRESH_TOKEN=tokens["refresh_token"])
    runner.env |= {"TOKEN": refreshed["access_token"]}

    media = run("POST /api/v1/media/upload")
    assert media["filename"] == "cat.jpg"
    assert media["alt"] == "A cat on the sofa"
    runner.env |= {"MEDIA_ID": media["id"]}
    assert run("GET /api/v1/media/{}")["id"] == media["id"]
    listed = run("GET /api/v1/media")
    assert [m["id"] for m in listed["data"]] == [media["id"]]
    assert listed["total"] == 1
    assert run("PATCH /api/v1/media/{}")["metadata"]["album"] == "home"
    names = {v["name"] for v in run("GET /api/v1/media/{}/variants")["data"]}
    assert "thumbnail" in names
    assert run("GET /api/v1/media/{}/presign")["expires_in"] == 3600
    batch = run("POST /api/v1/media/batch")
    assert [m["id"] for m in batch["data"]] == [media["id"]]
    assert len(batch["missing"]) == 1
    assert run("POST /api/v1/media/resolve")["media"][0]["id"] == media["id"]

    signed = run("POST /api/v1/media/{}/transform-url")
    assert "/w_400,h_300,fit_cover,q_80,f_webp/" in signed["url"]
    image = run("GET /t/{}/{}/{}", TRANSFORM_URL=signed["url"])
    assert isinstance(image, bytes)
    assert image[8:12] == b"WEBP"
    derived = run("POST /api/v1/media/{}/convert")
    assert derived["derived_from"]["media_id"] == media["id"]
    assert derived["mime"] == "image/webp"

    collection = run("POST /api/v1/collections")
    runner.env |= {"COLLECTION_ID": collection["id"]}
    assert run("POST /api/v1/collections/{}/media")["added"] == [media["id"]]
    assert [m["id"] for m in run("GET /api/v1/collections/{}/media")["data"]] == [media["id"]]

    jobs = run("POST /api/v1/media/batch/convert")["jobs"]
    runner.env |= {"JOB_ID": jobs[0]["id"]}
    assert run("GET /api/v1/jobs/{}")["id"] == jobs[0]["id"]
    run("GET /api/v1/jobs")

    ticket = run("POST /api/v1/media/upload-url")
    run("PUT /uploads/local/{}", UPLOAD_URL=ticket["upload_url"])
    finalized = run("POST /api/v1/media/{}/finalize", MEDIA_ID=ticket["media_id"])
    assert finalized["status"] == "ready"
    assert finalized["filename"] == "dog.png"

    discovery = run("OPTIONS /api/v1/uploads/tus")  # curl -i: the body file holds the headers
    assert re.search(rb"(?im)^tus-version: 1\.0\.0", discovery)
    created = run("POST /api/v1/uploads/tus")
    assert re.search(rb"(?im)^location: \S+/api/v1/uploads/tus/\S+", created)

    key = run("POST /api/v1/api-keys")
    assert key["key"].startswith("mk_")
    assert key["role"] == "member"
    usage = run("GET /api/v1/usage")
    assert usage["media_count"] >= 3
    assert run("GET /healthz") == {"status": "ok"}

    assert run("GET /api/v1/collections")["total"] == 1
    assert run("GET /api/v1/collections/{}")["media_count"] == 1
    assert run("PATCH /api/v1/collections/{}")["name"] == "Holiday"
    assert run("GET /api/v1/media/{}/content") == (workdir / "cat.jpg").read_bytes()
    runner.env |= {"KEY_ID": key["id"]}
    assert [k["id"] for k in run("GET /api/v1/api-keys")["data"]] == [key["id"]]
    run("DELETE /api/v1/api-keys/{}")
    assert run("POST /api/v1/orgs")["role"] == "owner"
    assert {o["slug"] for o in run("GET /api/v1/orgs")["data"]} == {"ada", "acme"}
    assert run("GET /readyz")["failing"] == []

    # Video, tus and captions, on the clip the reader has.
    with live_auth_server.client() as http:
        with (workdir / "clip.mp4").open("rb") as clip:
            answer = http.post(
                "/api/v1/media/upload",
                headers={"Authorization": f"Bearer {runner.env['TOKEN']}"},
                files={"file": ("clip.mp4", clip, "video/mp4")},
            )
    assert answer.status_code == 201, answer.text
    runner.env |= {"VIDEO_ID": answer.json()["id"]}
    assert run("POST /api/v1/media/{}/captions")["approved"] is True
    assert run("GET /api/v1/media/{}/captions/{}.vtt").startswith(b"WEBVTT")
    assert run("GET /api/v1/media/{}/captions/{}.srt").startswith(b"1\n")
    assert run("GET /api/v1/media/{}/transcript")["text"] == "Hello there"
    assert run("PATCH /api/v1/media/{}/captions/{}")["approved"] is True
    assert run("GET /api/v1/media/{}/captions")["data"][0]["language"] == "en-US"
    assert run("POST /api/v1/media/{}/thumbnail")["kind"] == "image"
    assert run("POST /api/v1/media/{}/trim")["job"]["type"] == "media.trim"

    upload_url = re.search(rb"(?im)^location: (\S+)", created)
    assert upload_url is not None
    runner.env |= {"UPLOAD_URL": upload_url.group(1).decode()}
    assert re.search(rb"(?im)^upload-offset: 0", run("HEAD /api/v1/uploads/tus/{}"))
    finished = run("PATCH /api/v1/uploads/tus/{}", whole=True)
    assert re.search(rb"(?im)^media-id: " + answer.json()["id"].encode(), finished)
    run("DELETE /api/v1/uploads/tus/{}")

    run("DELETE /api/v1/media/{}", MEDIA_ID=derived["id"])
    run("DELETE /api/v1/collections/{}")
    assert len(runner.ran) >= 10


# ---------------------------------------------------------------- the TypeScript examples run

SNIPPET_RUNNER = Path(__file__).with_name("docs_snippets.mjs")
# The guide's conventions, as the examples see them (README.md: "ids from earlier answers").
SNIPPET_GLOBALS = """import type { Mediakeep } from "@mediakeep/client";
declare global {
  const mk: Mediakeep;
  const mediaId: string;
  const videoId: string;
  const jobId: string;
  const secret: string;
  const rawBody: string;
  const headers: Record<string, string>;
}
export {};
"""
SNIPPET_TSCONFIG = {
    "compilerOptions": {
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "strict": True,
        "skipLibCheck": True,
        "noEmitOnError": True,
        "lib": ["es2022", "dom", "dom.iterable"],
        "types": ["node"],
        "rootDir": "src",
        "outDir": "out",
    },
    "include": ["src/*.ts"],
}


def typescript_blocks() -> list[tuple[str, str]]:
    """(name, code) of every ```ts block of the guide, in page order: `media.md#2`."""
    blocks: list[tuple[str, str]] = []
    for page in sorted(GUIDE.glob("*.md")):
        codes = [code for lang, code in FENCE.findall(page.read_text()) if lang == "ts"]
        blocks += [(f"{page.name}#{n}", code) for n, code in enumerate(codes, 1)]
    return blocks


def test_every_guide_page_has_a_typescript_example() -> None:
    pages = {name.split("#")[0] for name, _ in typescript_blocks()}
    missing = sorted({p.name for p in GUIDE.glob("*.md")} - pages)
    assert not missing, f"guide pages without a ```ts example: {missing}"


def node_run(sdk: BuiltSdk, args: list[str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(
        [sdk.node, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"node {' '.join(args)}\n{done.stdout[-8000:]}\n{done.stderr}"
    return done.stdout


def test_typescript_examples_type_check_and_run_against_a_live_server(
    built_sdk: BuiltSdk, live_auth_server: LiveServer, tmp_path: Path
) -> None:
    reader = tmp_path / "reader"
    (reader / "src").mkdir(parents=True)
    (reader / "out").mkdir()
    # `import ... from "@mediakeep/client"` finds the built package, as after `npm install`.
    (reader / "node_modules" / "@mediakeep").mkdir(parents=True)
    (reader / "node_modules" / "@mediakeep" / "client").symlink_to(built_sdk.package)
    (reader / "node_modules" / "@types").symlink_to(built_sdk.package / "node_modules" / "@types")
    (reader / "out" / "package.json").write_text('{"type": "module"}')
    (reader / "tsconfig.json").write_text(json.dumps(SNIPPET_TSCONFIG))
    (reader / "src" / "globals.d.ts").write_text(SNIPPET_GLOBALS)
    snippets = []
    for n, (name, code) in enumerate(typescript_blocks()):
        stem = f"{n:02d}-{name.replace('.md#', '-')}"
        # `export {}`: each example is its own module (its names do not clash with the next's).
        (reader / "src" / f"{stem}.ts").write_text(code + "\nexport {};\n")
        snippets.append({"name": name, "file": str(reader / "out" / f"{stem}.js")})
    tsc = built_sdk.package / "node_modules" / "typescript" / "bin" / "tsc"
    node_run(built_sdk, [str(tsc), "-p", "tsconfig.json"], reader, timeout=180)

    (reader / "cat.jpg").write_bytes(mediagen.jpeg(640, 480))
    (reader / "dog.png").write_bytes(mediagen.png(200, 100))
    (reader / "bird.png").write_bytes(mediagen.png(120, 90))
    (reader / "clip.mp4").write_bytes(mediagen.mp4(3.0))
    credentials = {"email": "reader@example.com", "password": "a-long-password-123"}
    with live_auth_server.client() as http:
        assert http.post("/api/v1/auth/register", json=credentials).status_code == 201
        token = http.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        with (reader / "cat.jpg").open("rb") as cat:
            media = http.post("/api/v1/media/upload", files={"file": ("cat.jpg", cat)}).json()
        with (reader / "clip.mp4").open("rb") as clip:
            video = http.post("/api/v1/media/upload", files={"file": ("clip.mp4", clip)}).json()
        trim = http.post(
            f"/api/v1/media/{video['id']}/trim", json={"start_time": 0.5, "end_time": 2}
        )
        assert trim.status_code == 202, trim.text
    # A delivery signed as the server signs them, for the verification example.
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = json.dumps({"id": "evt_1", "type": "media.ready", "org_id": "org_1", "data": {}})
    stamp = int(time.time())
    signature = sign(webhook_secret, "evt_1", stamp, body.encode())
    manifest = {
        "baseUrl": live_auth_server.base_url,
        "token": token,
        "timeoutMs": 120_000,
        "globals": {
            "mediaId": media["id"],
            "videoId": video["id"],
            "jobId": trim.json()["job"]["id"],
            "secret": webhook_secret,
            "rawBody": body,
            "headers": {
                "webhook-id": "evt_1",
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature,
            },
        },
        "snippets": snippets,
    }
    (reader / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(SNIPPET_RUNNER, reader / "run.mjs")
    node_run(built_sdk, ["run.mjs", "manifest.json", "results.json"], reader, timeout=900)
    results = json.loads((reader / "results.json").read_text())
    failed = [f"{r['name']}: {r['error']}" for r in results if not r["ok"]]
    assert not failed, "TypeScript examples failed:\n" + "\n\n".join(failed)
    assert [r["name"] for r in results] == [s["name"] for s in snippets]

    # What the examples did is on the server.
    with live_auth_server.client() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        listed = http.get("/api/v1/media", params={"limit": 100}).json()["data"]
        sources = {(m["filename"], m["source"]) for m in listed}
        assert {("dog.png", "presigned"), ("bird.png", "upload")} <= sources, sources
        collections = http.get("/api/v1/collections").json()["data"]
        assert [c["name"] for c in collections] == ["Holidays"]
        ada = http.post(
            "/api/v1/auth/login",
            json={"email": "ada@example.com", "password": "correct-horse-battery"},
        )
        assert ada.status_code == 200, ada.text
