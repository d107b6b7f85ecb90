"""Local HTTP servers that speak the protocols of SDSS ImgCutout, the Legacy Survey viewer, CDS Sesame
and NED ObjectLookup, so the real clients are tested without a network.

One server answers all four on different paths. Behaviour switches (slow answers, 5xx errors, garbage
bodies, a sky footprint) let tests drive the clients' timeouts, retries and error messages.
"""
from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
from PIL import Image

KNOWN_OBJECTS = {
    "M33": {"oname": "M  33", "ra": 23.46206906, "dec": 30.66017511, "aliases": ["NGC 598", "UGC 1117", "PGC 5818", "LEDA 5818"]},
    "NGC4826": {"oname": "M  64", "ra": 194.18225, "dec": 21.68211, "aliases": ["M 64", "PGC 44182", "UGC 8062"]},
    # Not in OpenNGC, so only a remote resolver can find it.
    "ESO123-G45": {"oname": "ESO 123-G 45", "ra": 301.25, "dec": -58.5, "aliases": ["PGC 987654"]},
    "SOMBRERO": {"oname": "M 104", "ra": 189.99763, "dec": -11.62305, "aliases": ["NGC 4594", "PGC 42407"]},
}


def galaxy_jpeg(width: int, height: int, *, axis_ratio: float = 0.4, angle_deg: float = 30.0, quality: int = 90) -> bytes:
    """A JPEG of a smooth inclined disk, big enough to be a plausible cut-out."""
    y, x = np.mgrid[0:height, 0:width].astype(float)
    x -= width / 2
    y -= height / 2
    theta = np.radians(angle_deg)
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    radius = np.sqrt(xr**2 + (yr / axis_ratio) ** 2) / (min(width, height) / 6)
    light = np.exp(-radius) * 230 + np.random.default_rng(0).normal(10, 3, (height, width))
    grey = np.clip(light, 0, 255).astype(np.uint8)
    rgb = np.stack([grey, (grey * 0.9).astype(np.uint8), (grey * 0.8).astype(np.uint8)], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _key(name: str) -> str:
    return "".join(name.upper().split()).replace("MESSIER", "M").replace("NGC0", "NGC")


@dataclass
class Behaviour:
    delay_s: float = 0.0
    failures_before_success: int = 0  # answer 500 this many times first
    garbage: bool = False
    dec_footprint: tuple[float, float] = (-90.0, 90.0)  # SDSS-like: no image outside


@dataclass
class FakeAstroServices:
    """Start with ``with FakeAstroServices() as fake:``; point settings at ``fake.url(...)``."""

    behaviours: dict[str, Behaviour] = field(default_factory=lambda: {k: Behaviour() for k in ("sdss", "legacy", "sesame", "ned")})
    requests: Counter = field(default_factory=Counter)
    last_params: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                return

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _misbehave(self, service: str) -> bool:
                behaviour = fake.behaviours[service]
                fake.requests[service] += 1
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                if behaviour.failures_before_success > 0:
                    behaviour.failures_before_success -= 1
                    self._send(500, b"Internal Server Error", "text/plain")
                    return True
                if behaviour.garbage:
                    self._send(200, b"<html>maintenance</html>", "text/html")
                    return True
                return False

            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                if parsed.path.endswith("/getjpeg"):
                    fake.last_params["sdss"] = params
                    if self._misbehave("sdss"):
                        return
                    low, high = fake.behaviours["sdss"].dec_footprint
                    width, height = int(params["width"]), int(params["height"])
                    if not low <= float(params["dec"]) <= high:
                        blank = io.BytesIO()
                        Image.new("RGB", (width, height)).save(blank, format="JPEG", quality=10)
                        self._send(200, blank.getvalue(), "image/jpeg")
                        return
                    self._send(200, galaxy_jpeg(width, height), "image/jpeg")
                elif parsed.path.endswith("/jpeg-cutout"):
                    fake.last_params["legacy"] = params
                    if self._misbehave("legacy"):
                        return
                    size = int(params["size"])
                    self._send(200, galaxy_jpeg(size, size), "image/jpeg")
                elif "/nph-sesame" in parsed.path:
                    if self._misbehave("sesame"):
                        return
                    self._send(200, fake.sesame_xml(unquote(parsed.query)).encode(), "text/xml")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if parsed.path.endswith("/ObjectLookup"):
                    if self._misbehave("ned"):
                        return
                    name = json.loads(form.get("json", "{}")).get("name", {}).get("v", "")
                    self._send(200, json.dumps(fake.ned_json(name)).encode(), "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- protocol bodies ------------------------------------------------------------------

    @staticmethod
    def sesame_xml(name: str) -> str:
        entry = KNOWN_OBJECTS.get(_key(name))
        if entry is None:
            return (f'<?xml version="1.0"?><Sesame><Target option="SNV"><name>{name}</name>'
                    '<Resolver name="S=Simbad"><INFO>*** Nothing found ***</INFO></Resolver></Target></Sesame>')
        aliases = "".join(f"<alias>{a}</alias>" for a in entry["aliases"])
        return (f'<?xml version="1.0"?><Sesame><Target option="SNV"><name>{name}</name>'
                f'<Resolver name="S=Simbad (via url)"><otype>G</otype><jpos>..</jpos>'
                f'<jradeg>{entry["ra"]}</jradeg><jdedeg>{entry["dec"]}</jdedeg>'
                f'<oname>{entry["oname"]}</oname>{aliases}</Resolver></Target></Sesame>')

    @staticmethod
    def ned_json(name: str) -> dict:
        entry = KNOWN_OBJECTS.get(_key(name))
        if entry is None:
            return {"ResultCode": 0, "StatusCode": 100, "Supplied": name, "Preferred": {}}
        return {"ResultCode": 3, "StatusCode": 100, "Supplied": name, "Interpreted": {"Name": entry["oname"]},
                "Preferred": {"Name": entry["oname"], "ObjType": {"Value": "G"},
                              "Position": {"RA": entry["ra"], "Dec": entry["dec"], "PosAngle": 0.0}}}

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, service: str) -> str:
        return {
            "sdss": f"{self.base}/dr16/SkyServerWS/ImgCutout/getjpeg",
            "legacy": f"{self.base}/viewer/jpeg-cutout",
            "sesame": f"{self.base}/cgi-bin/nph-sesame/-oxp/SNV",
            "ned": f"{self.base}/srs/ObjectLookup",
        }[service]

    def configure(self, settings) -> None:  # noqa: ANN001
        """Point a pytest-django ``settings`` fixture at this server."""
        settings.SDSS_CUTOUT_URL = self.url("sdss")
        settings.LEGACY_SURVEY_CUTOUT_URL = self.url("legacy")
        settings.SESAME_URL = self.url("sesame")
        settings.NED_LOOKUP_URL = self.url("ned")
        settings.REMOTE_TIMEOUT_S = 2.0
        settings.REMOTE_RETRIES = 1

    def __enter__(self) -> FakeAstroServices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
