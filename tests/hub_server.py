#!/usr/bin/env python3
"""A hub-like HTTP server for tests/test_hub.c, answering as huggingface.co does.

Usage: hub_server.py ROOT. Repositories are folders ROOT/<org>/<name>/ holding their files, plus:
  .commit   the commit hash that revision "main" (and the hash itself) resolves to
  .token    if present, the repository is private: requests need "Authorization: Bearer <token>"
  .badjson  if present, the file-list endpoint answers with broken JSON
Prints "PORT <n>" on stdout once listening on 127.0.0.1 (a free port chosen by the system).

Endpoints:
  GET  /api/models/<org>/<name>/revision/<rev>  {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD/GET /<org>/<name>/resolve/<rev>/<file>   small files: 200 with ETag (git blob sha1);
       *.safetensors/*.gguf (LFS): 302 to /_cdn/... with X-Linked-Etag (sha256) and X-Linked-Size;
       both carry X-Repo-Commit. Errors carry X-Error-Code as the hub's do.
  GET  /_cdn/<org>/<name>/<file>                the bytes, honouring "Range: bytes=N-"
Test controls (not counted):
  GET /_stats   one line: api=N head=N get=N cdn=N ranges=a,b auth=<last Authorization or ->
  GET /_reset   zeroes the counters
  GET /_cut?n=K the next K body transfers send half of the bytes asked for, then close the connection
"""
import hashlib
import http.server
import json
import os
import sys
import threading
import urllib.parse

ROOT = sys.argv[1]
LFS_SUFFIXES = (".safetensors", ".gguf")
lock = threading.Lock()
state = {"api": 0, "head": 0, "get": 0, "cdn": 0, "ranges": [], "auth": "-", "cut": 0}


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def repo_files(repo):
    out = []
    for folder, _, names in os.walk(repo):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), repo)
            if not rel.startswith("."):
                out.append(rel)
    return sorted(out)


def etag_of(data, lfs):
    if lfs:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except ConnectionError:
            pass  # the client closed a kept-alive connection

    def reply(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, message, head=False):
        self.reply(status, json.dumps({"error": message}).encode(),
                   {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}, head)

    def repo(self, org, name, head=False):
        """The repository folder after the access checks, or None (an error was sent)."""
        path = os.path.join(ROOT, org, name)
        if not os.path.isdir(path):
            self.error(404, "RepoNotFound", "Repository not found", head)
            return None
        token = read_text(os.path.join(path, ".token"))
        if token is not None and self.headers.get("Authorization") != "Bearer " + token:
            self.error(401, "RepoNotFound", "Invalid credentials in Authorization header", head)
            return None
        return path

    def commit_of(self, path, revision, head=False):
        commit = read_text(os.path.join(path, ".commit"))
        if revision not in ("main", commit):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + revision, head)
            return None
        return commit

    def send_bytes(self, data, head=False, extra=None):
        """The bytes with Range support; a pending cut sends half and drops the connection."""
        start = 0
        status = 200
        headers = dict(extra or {}, **{"Accept-Ranges": "bytes"})
        spec = self.headers.get("Range")
        if spec:
            start = int(spec.split("=")[1].split("-")[0])
            with lock:
                state["ranges"].append(start)
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)}, head)
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = data[start:]
        with lock:
            cut = not head and state["cut"] > 0
            if cut:
                state["cut"] -= 1
        if not cut:
            return self.reply(status, body, headers, head)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.close_connection = True

    def control(self, path, query):
        if path == "/_stats":
            with lock:
                ranges = ",".join(str(r) for r in state["ranges"]) or "-"
                line = "api=%d head=%d get=%d cdn=%d ranges=%s auth=%s\n" % (
                    state["api"], state["head"], state["get"], state["cdn"], ranges, state["auth"])
            return self.reply(200, line.encode())
        with lock:
            if path == "/_reset":
                state.update(api=0, head=0, get=0, cdn=0, ranges=[], auth="-", cut=0)
            elif path == "/_cut":
                state["cut"] = int(query.get("n", ["1"])[0])
        self.reply(200, b"ok\n")

    def handle_request(self, head):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path.startswith("/_") and not path.startswith("/_cdn/"):
            return self.control(path, urllib.parse.parse_qs(url.query))
        with lock:
            state["auth"] = self.headers.get("Authorization", "-")
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 6 and parts[1] == "models" and parts[4] == "revision":
            with lock:
                state["api"] += 1
            repo = self.repo(parts[2], parts[3])
            commit = repo and self.commit_of(repo, "/".join(parts[5:]))
            if not commit:
                return
            if os.path.exists(os.path.join(repo, ".badjson")):
                return self.reply(200, b'{"sha": "', {"Content-Type": "application/json"})
            body = {"id": parts[2] + "/" + parts[3], "sha": commit,
                    "siblings": [{"rfilename": f} for f in repo_files(repo)]}
            return self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
        if parts[0] == "_cdn" and len(parts) >= 4:
            with lock:
                state["cdn"] += 1
            with open(os.path.join(ROOT, *parts[1:]), "rb") as f:
                return self.send_bytes(f.read(), head)
        if len(parts) >= 5 and parts[2] == "resolve":
            with lock:
                state["head" if head else "get"] += 1
            repo = self.repo(parts[0], parts[1], head)
            commit = repo and self.commit_of(repo, parts[3], head)
            if not commit:
                return
            name = "/".join(parts[4:])
            file = os.path.join(repo, *parts[4:])
            if not os.path.isfile(file):
                return self.error(404, "EntryNotFound", name + " does not exist", head)
            with open(file, "rb") as f:
                data = f.read()
            lfs = name.endswith(LFS_SUFFIXES)
            headers = {"X-Repo-Commit": commit}
            if lfs:
                headers.update({"X-Linked-Etag": '"%s"' % etag_of(data, True), "X-Linked-Size": str(len(data)),
                                "Location": "/_cdn/%s/%s/%s" % (parts[0], parts[1], urllib.parse.quote(name))})
                return self.reply(302, b"", headers, head)
            headers["ETag"] = '"%s"' % etag_of(data, False)
            return self.send_bytes(data, head, headers)
        self.reply(404, b"not found\n")

    def do_GET(self):
        self.handle_request(False)

    def do_HEAD(self):
        self.handle_request(True)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
