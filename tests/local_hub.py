"""A stand-in for the Hugging Face Hub on 127.0.0.1, serving folders in the Hub's layout (for test_online_road).

It answers the requests huggingface_hub makes when `HF_ENDPOINT` points at it: repository info
(`/api/{models,datasets}/REPO[/revision/REV]`), file listings (`/tree/`, `/paths-info/`) and file downloads
(`[/datasets]/REPO/resolve/REV/PATH`, HEAD and GET, with the commit and ETag headers the client caches by).
Every request is logged in `LocalHub.requests`, so a test can show the client really went over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # every repository is one commit
REVISIONS = ("main", COMMIT)


class LocalHub:
    """Repositories {("model" | "dataset", repo_id): folder}, served over HTTP from a background thread."""

    def __init__(self, repos: dict[tuple[str, str], Path]) -> None:
        self.repos = {key: Path(folder) for key, folder in repos.items()}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the test reads `requests` instead
                pass

            def do_HEAD(self) -> None:
                hub.answer(self, body=False)

            def do_GET(self) -> None:
                hub.answer(self, body=True)

            def do_POST(self) -> None:
                hub.answer(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The value for HF_ENDPOINT."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ answers

    def _files(self, kind: str, repo: str) -> list[str]:
        folder = self.repos[(kind, repo)]
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def _entry(self, kind: str, repo: str, path: str) -> dict:
        file = self.repos[(kind, repo)] / path
        if file.is_dir():
            return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0}
        data = file.read_bytes()
        return {"type": "file", "path": path, "oid": hashlib.sha1(data).hexdigest(), "size": len(data)}

    def _repo(self, url_path: str) -> tuple[str, str, str] | None:
        """(kind, repo_id, rest) for a known repository at the start of `url_path`, else None."""
        for kind, repo in self.repos:
            prefix = "/datasets/" if kind == "dataset" else "/"
            for start in (f"/api/{kind}s/{repo}", f"{prefix}{repo}"):
                if url_path == start or url_path.startswith(start + "/"):
                    return kind, repo, url_path[len(start) :]
        return None

    def _send(self, handler, status: int, payload: bytes, headers: dict, body: bool) -> None:
        handler.send_response(status)
        for key, value in {"Content-Length": str(len(payload)), **headers}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(payload)

    def _json(self, handler, data, body: bool) -> None:
        self._send(handler, 200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)

    def _missing(self, handler, code: str, body: bool) -> None:
        message = json.dumps({"error": f"{code}: not on this stand-in hub"}).encode()
        headers = {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": code}
        self._send(handler, 404, message, headers, body)

    def answer(self, handler, body: bool) -> None:
        """Route one request."""
        url = urlsplit(handler.path)
        path = unquote(url.path)
        self.requests.append(f"{handler.command} {path}")
        if handler.command == "POST":  # read the form so the connection stays usable
            length = int(handler.headers.get("Content-Length") or 0)
            form = parse_qs(handler.rfile.read(length).decode()) if length else {}
        found = self._repo(path)
        if found is None:
            return self._missing(handler, "RepoNotFound", body)
        kind, repo, rest = found
        files = self._files(kind, repo)
        if path.startswith("/api/"):
            info = re.fullmatch(r"(?:/revision/(?P<rev>[^/]+))?", rest)
            if info is not None:
                if info["rev"] not in (None, *REVISIONS):
                    return self._missing(handler, "RevisionNotFound", body)
                siblings = [{"rfilename": f, "size": (self.repos[(kind, repo)] / f).stat().st_size} for f in files]
                info = {"id": repo, "sha": COMMIT, "siblings": siblings, "private": False, "gated": False}
                info.update(disabled=False, downloads=0, likes=0, tags=[], lastModified="2026-12-01T00:00:00.000Z")
                return self._json(handler, info, body)
            listing = re.fullmatch(r"/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", rest)
            if listing is not None:
                sub = (listing["sub"] or "").strip("/")
                if sub and not (self.repos[(kind, repo)] / sub).exists():
                    return self._missing(handler, "EntryNotFound", body)
                recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
                inside = [f for f in files if not sub or f.startswith(sub + "/")]
                depth = sub.count("/") + 1 if sub else 0
                names = set()
                for f in inside:
                    parts = f.split("/")
                    names.update("/".join(parts[: i + 1]) for i in range(depth, len(parts) if recursive else depth + 1))
                return self._json(handler, [self._entry(kind, repo, n) for n in sorted(names)], body)
            if re.fullmatch(r"/paths-info/[^/]+", rest):
                wanted = [p for p in form.get("paths", []) if (self.repos[(kind, repo)] / p).exists()]
                return self._json(handler, [self._entry(kind, repo, p) for p in wanted], body)
            return self._missing(handler, "EntryNotFound", body)
        resolved = re.fullmatch(r"/resolve/(?P<rev>[^/]+)/(?P<file>.+)", rest)
        if resolved is None:
            return self._missing(handler, "EntryNotFound", body)
        if resolved["rev"] not in REVISIONS:
            return self._missing(handler, "RevisionNotFound", body)
        file = self.repos[(kind, repo)] / resolved["file"]
        if not file.is_file():
            return self._missing(handler, "EntryNotFound", body)
        data = file.read_bytes()
        headers = {
            "X-Repo-Commit": COMMIT,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", handler.headers.get("Range", ""))
        if ranged and body:
            start, end = int(ranged[1]), int(ranged[2]) if ranged[2] else len(data) - 1
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            return self._send(handler, 206, part, headers, body)
        return self._send(handler, 200, data, headers, body)
