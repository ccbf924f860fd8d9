"""The website the checks hit: nginx when installed, else two aiohttp processes (SO_REUSEPORT).

Every path answers ``200 ok``, or with ``answer_kib`` > 0 the same text/plain body of that
many KiB whose last bytes are ``MARKER`` (nginx serves it as a static file). The harness starts
and stops it and reads its processes' CPU, so a reader can see that the target was not the
bottleneck. nginx also serves ``stub_status``, whose counters show how many requests each
connection carried (1.0 means no keep-alive).

With ``tls`` the same answer is served over TLS on a second port (``tls_port``), with a
certificate for 127.0.0.1 and localhost issued at start by a throw-away CA (``trustme``); the
CA's PEM (``ca_file``) is what a client trusts through ``SSL_CERT_FILE``. The certificate is
checked at start: trusted with the CA, refused without it.

Run as ``python -m benchmarks.target PORT KIB [TLS_PORT CERT KEY]`` it is one process of the
Python fallback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks import procstat

NGINX_CONF = """\
{user}worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/tmp_body;
    proxy_temp_path {dir}/tmp_proxy;
    fastcgi_temp_path {dir}/tmp_fastcgi;
    uwsgi_temp_path {dir}/tmp_uwsgi;
    scgi_temp_path {dir}/tmp_scgi;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /nginx_status {{ stub_status; }}
        location / {{ default_type text/plain; {answer} }}
    }}
{tls_server}}}
"""
# The same answer over TLS (1.3 where the client has it, as on most sites); no session cache:
# a monitor opens each connection afresh and resumes nothing.
NGINX_TLS_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl reuseport backlog=4096;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ default_type text/plain; {answer} }}
    }}
"""
STATUS_PATH = "/nginx_status"
OK_ANSWER = 'return 200 "ok\\n";'
FILE_ANSWER = "root {dir}/www; try_files /answer.txt =404;"  # every path: that one file
MARKER = "uptimed-bench-marker-5e1f"  # only at the very end of the answer


def answer_body(kib: int) -> bytes:
    """``kib`` KiB of ASCII lines that end with ``MARKER``: a check that looks for it must
    read and search the whole body."""
    size, tail = kib * 1024, f"{MARKER}\n".encode()
    line = b"The quick brown fox jumps over the lazy dog; uptimed benchmark filler.\n"
    filler = line * (size // len(line) + 1)
    return filler[: size - len(tail)] + tail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A started target; ``stop()`` ends every process it started, by process group."""

    def __init__(
        self,
        workdir: Path,
        *,
        prefer_nginx: bool = True,
        answer_kib: int = 0,
        tls: bool = False,
        tls_key: str = "ecdsa",
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tls_port = free_port() if tls else None
        self.tls_key = tls_key
        self.ca_file: Path | None = None
        self.tls_info: dict | None = None
        self.kind = "nginx" if prefer_nginx and shutil.which("nginx") else "python"
        self.answer_kib = answer_kib
        self.answer_bytes = len(answer_body(answer_kib)) if answer_kib else len(b"ok\n")
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir = workdir / "target"
        self._dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        if self.tls_port is not None:
            self._write_certificates()
        if self.kind == "nginx":
            conf = self._dir / "nginx.conf"
            answer, user = OK_ANSWER, ""
            if self.answer_kib:
                # as root, workers would run as nobody, who cannot read the private work dir
                user = "user root;\n" if os.geteuid() == 0 else ""
                (self._dir / "www").mkdir(exist_ok=True)
                (self._dir / "www" / "answer.txt").write_bytes(answer_body(self.answer_kib))
                answer = FILE_ANSWER.format(dir=self._dir)
            tls_server = ""
            if self.tls_port is not None:
                tls_server = NGINX_TLS_SERVER.format(
                    port=self.tls_port,
                    cert=self._dir / "cert.pem",
                    key=self._dir / "key.pem",
                    answer=answer,
                )
            conf.write_text(
                NGINX_CONF.format(
                    dir=self._dir, port=self.port, answer=answer, user=user, tls_server=tls_server
                )
            )
            cmd = ["nginx", "-p", str(self._dir), "-c", str(conf), "-g", "daemon off;"]
            self._procs.append(self._spawn(cmd))
        else:
            for _ in range(2):
                cmd = [sys.executable, "-m", "benchmarks.target", str(self.port)]
                cmd.append(str(self.answer_kib))
                if self.tls_port is not None:
                    cmd += [str(self.tls_port), str(self._dir / "cert.pem")]
                    cmd.append(str(self._dir / "key.pem"))
                self._procs.append(self._spawn(cmd))
        self._wait_ready(timeout=15)
        if self.tls_port is not None:
            self.tls_info = self._check_tls()

    def _write_certificates(self) -> None:
        """A throw-away CA and a leaf for 127.0.0.1 and localhost, as PEM files."""
        import trustme  # a test dependency: only needed for the TLS kinds

        key_type = trustme.KeyType.RSA if self.tls_key == "rsa" else trustme.KeyType.ECDSA
        ca = trustme.CA(key_type=key_type)
        leaf = ca.issue_cert("127.0.0.1", "localhost", key_type=key_type)
        self.ca_file = self._dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        leaf.cert_chain_pems[0].write_to_path(str(self._dir / "cert.pem"))
        leaf.private_key_pem.write_to_path(str(self._dir / "key.pem"))

    def _check_tls(self) -> dict:
        """The TLS port answers with the CA trusted, and refuses verification without it (so an
        https site UP with verify_tls on shows that uptimed trusted ``SSL_CERT_FILE``)."""
        assert self.ca_file is not None
        trusted = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(self.https_base + "/ready", timeout=5, context=trusted) as r:
            ok = r.status == 200
        with (
            socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw,
            trusted.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            version, cipher = conn.version(), (conn.cipher() or ("?",))[0]
        refused = False
        try:
            with (
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw,
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                pass
        except ssl.SSLCertVerificationError:
            refused = True
        if not ok or not refused:
            raise RuntimeError(f"TLS target: answer ok={ok}, refused without the CA={refused}")
        return {
            "port": self.tls_port,
            "key": self.tls_key,
            "ca_file": str(self.ca_file),
            "protocol_cipher": f"{version} {cipher}",
            "refused_without_ca": refused,
        }

    def _spawn(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self._dir / "target.log").open("ab")
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop() can end workers with the master
            cwd=Path(__file__).resolve().parent.parent,
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    log = (self._dir / "target.log").read_text(errors="replace")
                    raise RuntimeError(f"{self.kind} target exited {proc.returncode}: {log}")
            try:
                with urllib.request.urlopen(self.base + "/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} target did not answer within {timeout:g}s")

    def url(self, i: int | str) -> str:
        return f"{self.base}/s/{i}"

    @property
    def https_base(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def https_url(self, i: int | str) -> str:
        return f"{self.https_base}/s/{i}"

    def pids(self) -> list[int]:
        """Every process of the target (nginx master and workers, or the Python processes)."""
        pids = [p.pid for p in self._procs if p.poll() is None]
        if self.kind == "nginx":
            pids += [kid for pid in list(pids) for kid in procstat.children(pid)]
        return pids

    def counters(self) -> dict[str, int] | None:
        """nginx's ``accepts`` and ``requests`` so far; None for the Python target."""
        if self.kind != "nginx":
            return None
        with urllib.request.urlopen(self.base + STATUS_PATH, timeout=2) as resp:
            lines = resp.read().decode().splitlines()
        accepts, _handled, requests = (int(x) for x in lines[2].split())
        return {"accepts": accepts, "requests": requests}

    def version(self) -> str:
        if self.kind != "nginx":
            return "aiohttp x2 (SO_REUSEPORT)"
        out = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
        return out.stderr.strip().removeprefix("nginx version: ")

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._procs.clear()


def usage(before: dict[int, float], after: dict[int, float], wall: float) -> dict[str, float]:
    """Target CPU between two ``procstat.group_cpu`` readings, in % of one core."""
    per_proc = [after[p] - before.get(p, 0.0) for p in after]
    return {
        "cpu_pct_of_one_core": 100 * sum(per_proc) / wall if wall > 0 else 0.0,
        "busiest_process_pct": 100 * max(per_proc, default=0.0) / wall if wall > 0 else 0.0,
    }


def _serve(port: int, answer_kib: int, tls: tuple[int, str, str] | None = None) -> None:
    """One process of the Python fallback target; ``tls`` = (port, cert PEM, key PEM)."""
    import asyncio

    from aiohttp import web

    body = answer_body(answer_kib) if answer_kib else b"ok\n"

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls[1], tls[2])
            site = web.TCPSite(runner, "127.0.0.1", tls[0], reuse_port=True, ssl_context=context)
            await site.start()
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(serve())


if __name__ == "__main__":
    argv = sys.argv[1:]
    tls_args = (int(argv[2]), argv[3], argv[4]) if len(argv) >= 5 else None
    _serve(int(argv[0]), int(argv[1]) if len(argv) > 1 else 0, tls_args)
