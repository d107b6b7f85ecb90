"""Local HTTP servers that speak the protocols of SDSS SkyServer ImgCutout, the Legacy Survey viewer,
CDS Sesame and NED ObjectLookup, so the real clients are tested without a network.

One threaded server on 127.0.0.1 (a free port) answers all five on their real paths:

- ``GET /dr16/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=``: a JPEG of a synthetic
  inclined disk, width × height; outside ``dec_footprint`` the SkyServer failure (a blank image of the
  requested size, a tiny error image, or HTTP 500, as ``outside`` says);
- ``GET /viewer/jpeg-cutout?ra=&dec=&layer=&pixscale=&size=``: the same, size × size (blank outside);
- ``GET /cgi-bin/nph-sesame/-oxpI/SNV?<name>``: Sesame XML, with ``<alias>`` lines only when the
  output options hold ``I`` (as the real service);
- ``POST /srs/ObjectLookup`` (form field ``json={"name":{"v":...}}``, or ``GET ?name=``): NED JSON;
- ``GET /hyperleda/fG.cgi?n=meandata&…&sql=pgc=N&a=csv[;]``: HyperLEDA (``LEDA_OBJECTS``, see ``FakeHyperLeda``).

Per-service ``Behaviour`` switches (slow answers, N failures before success, garbage bodies, a sky
footprint) drive the clients' timeouts, retries and error messages; ``requests`` counts calls.

Use it as ``with FakeAstroServices() as fake: fake.configure(settings)`` (pytest-django's ``settings``),
or through the ``fake_services`` fixture of the root conftest / ``tests/fixtures_services.py``.
"""
from __future__ import annotations

import copy
import functools
import io
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

SERVICES = ("sdss", "legacy", "sesame", "ned", "hyperleda")

# Positions as HyperLEDA gives them; aliases as SIMBAD / NED list them.
KNOWN_OBJECTS: dict[str, dict[str, Any]] = {
    "M33": {"oname": "M  33", "ned_name": "MESSIER 033", "ra": 23.4621, "dec": 30.6599,
            "aliases": ["M  33", "NGC   598", "UGC  1117", "PGC 5818", "LEDA 5818", "NAME Triangulum Galaxy"]},
    "NGC4826": {"oname": "M  64", "ned_name": "MESSIER 064", "ra": 194.1825, "dec": 21.6830,
                "aliases": ["M  64", "NGC  4826", "UGC  8062", "PGC 44182", "LEDA 44182", "NAME Black Eye Galaxy"]},
    # Not in OpenNGC, so only a remote resolver can find it.
    "ESO123-G45": {"oname": "ESO 123-G 45", "ned_name": "ESO 123-G045", "ra": 301.25, "dec": -58.5,
                   "aliases": ["ESO 123-G 45", "PGC 987654"]},
    "SOMBRERO": {"oname": "M 104", "ned_name": "MESSIER 104", "ra": 189.99763, "dec": -11.62305,
                 "aliases": ["M 104", "NGC  4594", "PGC 42407", "LEDA 42407", "NAME Sombrero Galaxy"]},
}


def object_key(name: str) -> str:
    """"Messier 33", "m33" and "M  33" are one key; so are "NGC 0598" and "NGC598"."""
    key = "".join(name.upper().split()).replace("MESSIER", "M")
    for prefix in ("NGC", "UGC", "PGC", "LEDA", "M"):
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return prefix + str(int(key[len(prefix):]))
    return key


def _index(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every alias and name → the table key."""
    index: dict[str, str] = {}
    for key, entry in objects.items():
        for name in [key, entry["oname"], entry.get("ned_name", ""), *entry["aliases"]]:
            if name:
                index.setdefault(object_key(name.removeprefix("NAME ")), key)
    return index


@functools.lru_cache(maxsize=32)
def galaxy_jpeg(width: int, height: int, *, axis_ratio: float = 0.4, angle_deg: float = 30.0, quality: int = 90) -> bytes:
    """A real JPEG of a smooth inclined exponential disk on a noisy sky, ``width`` × ``height`` pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x -= width / 2
    y -= height / 2
    theta = np.radians(angle_deg)
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    radius = np.sqrt(xr**2 + (yr / axis_ratio) ** 2) / (min(width, height) / 6)
    light = np.exp(-radius) * 230 + np.random.default_rng(0).normal(10, 3, (height, width)).astype(np.float32)
    grey = np.clip(light, 0, 255).astype(np.uint8)
    rgb = np.stack([grey, (grey * 0.9).astype(np.uint8), (grey * 0.8).astype(np.uint8)], axis=2)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def blank_jpeg(width: int, height: int, *, level: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (level, level, level)).save(buffer, format="JPEG", quality=50)
    return buffer.getvalue()


@dataclass
class Behaviour:
    """How one fake service misbehaves."""

    delay_s: float = 0.0  # sleep before answering (time-out tests)
    failures_before_success: int = 0  # answer ``fail_status`` this many times first
    fail_status: int = 500
    garbage: bool = False  # answer 200 with an HTML maintenance page
    dec_footprint: tuple[float, float] = (-90.0, 90.0)  # image services: no data outside
    outside: str = "blank"  # SkyServer outside its footprint: "blank", "tiny" or "http500"


class QuietHandler(BaseHTTPRequestHandler):
    """What every fake server's handler shares: HTTP/1.1, no request log, and a reply that survives a client
    that gave up."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        return

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (a time-out test): nothing to tell it


@dataclass
class FakeAstroServices:
    """Start with ``with FakeAstroServices() as fake:``; point clients at ``fake.url(service)``."""

    behaviours: dict[str, Behaviour] = field(default_factory=lambda: {k: Behaviour() for k in SERVICES})
    requests: Counter = field(default_factory=Counter)
    last_params: dict[str, dict] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(KNOWN_OBJECTS))
    leda_objects: dict[int, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(LEDA_OBJECTS))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(QuietHandler):
            def _misbehave(self, service: str, params: dict) -> bool:
                behaviour = fake.behaviours[service]
                with fake._lock:
                    fake.requests[service] += 1
                    fake.last_params[service] = params
                    fail = behaviour.failures_before_success > 0
                    if fail:
                        behaviour.failures_before_success -= 1
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                if fail:
                    self._send(behaviour.fail_status, b"<html><body>Internal Server Error</body></html>", "text/html")
                    return True
                if behaviour.garbage:
                    self._send(200, b"<html><body>Down for maintenance</body></html>", "text/html")
                    return True
                return False

            def _outside(self, service: str, dec: float) -> bool:
                low, high = fake.behaviours[service].dec_footprint
                return not low <= dec <= high

            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                if parsed.path.endswith("/getjpeg"):
                    self._sdss(params)
                elif parsed.path.endswith("/jpeg-cutout"):
                    self._legacy(params)
                elif "/nph-sesame/" in parsed.path:
                    name = unquote(parsed.query)
                    if self._misbehave("sesame", {"name": name, "path": parsed.path}):
                        return
                    options = next((s for s in parsed.path.split("/") if s.startswith("-o")), "-ox")
                    self._send(200, fake.sesame_xml(name, with_aliases="I" in options).encode(), "text/xml")
                elif parsed.path.endswith("/ObjectLookup"):
                    self._ned(params.get("name", ""), params)
                elif parsed.path.endswith("/fG.cgi"):  # HyperLEDA, as FakeHyperLeda below
                    if self._misbehave("hyperleda", params):
                        return
                    self._send(200, hyperleda_answer(fake.leda_objects, params).encode(), "text/plain")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if parsed.path.endswith("/ObjectLookup"):
                    try:
                        name = json.loads(form.get("json", "{}"))["name"]["v"]
                    except (ValueError, KeyError, TypeError):
                        self._send(400, b'{"error": "bad json"}', "application/json")
                        return
                    self._ned(str(name), form)
                else:
                    self._send(404, b"not found", "text/plain")

            def _sdss(self, params: dict) -> None:
                if self._misbehave("sdss", params):
                    return
                try:
                    width, height = int(params["width"]), int(params["height"])
                    dec = float(params["dec"])
                    float(params["ra"]), float(params["scale"])
                except (KeyError, ValueError):
                    self._send(400, b"<html>bad request</html>", "text/html")
                    return
                if not (0 < width <= 2048 and 0 < height <= 2048):
                    self._send(500, b"<html>Image size out of range</html>", "text/html")
                    return
                if self._outside("sdss", dec):
                    mode = fake.behaviours["sdss"].outside
                    if mode == "http500":
                        self._send(500, b"<html>No image here</html>", "text/html")
                    elif mode == "tiny":
                        self._send(200, blank_jpeg(64, 64, level=128), "image/jpeg")
                    else:
                        self._send(200, blank_jpeg(width, height), "image/jpeg")
                    return
                self._send(200, galaxy_jpeg(width, height), "image/jpeg")

            def _legacy(self, params: dict) -> None:
                if self._misbehave("legacy", params):
                    return
                try:
                    size = int(params.get("size", 256))
                    dec = float(params["dec"])
                    float(params["ra"]), float(params.get("pixscale", 0.262))
                except (KeyError, ValueError):
                    self._send(400, b"<html>bad request</html>", "text/html")
                    return
                if not 0 < size <= 3000:
                    self._send(400, b"<html>size must be at most 3000</html>", "text/html")
                    return
                if self._outside("legacy", dec):
                    self._send(200, blank_jpeg(size, size), "image/jpeg")
                    return
                self._send(200, galaxy_jpeg(size, size), "image/jpeg")

            def _ned(self, name: str, params: dict) -> None:
                if self._misbehave("ned", {**params, "name": name}):
                    return
                self._send(200, json.dumps(fake.ned_json(name)).encode(), "application/json")

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True  # a client hung up mid-answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False  # closing never waits for a deliberately slow answer

            def handle_error(self, request: object, client_address: object) -> None:
                return  # broken pipes from clients that timed out are expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- protocol bodies ------------------------------------------------------------------

    def lookup(self, name: str) -> dict[str, Any] | None:
        key = _index(self.objects).get(object_key(name.removeprefix("NAME ")))
        return self.objects.get(key) if key else None

    def sesame_xml(self, name: str, *, with_aliases: bool = True) -> str:
        """Sesame's ``-ox[p][I]`` answer: one ``Resolver`` block, or an INFO saying nothing was found."""
        entry = self.lookup(name)
        head = ('<?xml version="1.0" encoding="UTF-8"?>\n<Sesame xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
                ' xsi:noNamespaceSchemaLocation="http://cds.unistra.fr/xml/sesame_4x.xsd">\n'
                f'<Target option="SNV">\n  <name>{escape(name)}</name>\n')
        if entry is None:
            return (head + '  <INFO>*** Nothing found ***</INFO>\n'
                    '  <Resolver name="S=Simbad (via url):    1ms"><INFO>*** Nothing found ***</INFO></Resolver>\n'
                    '  <Resolver name="N=NED:    2ms"><INFO>*** Nothing found ***</INFO></Resolver>\n'
                    '</Target>\n</Sesame>\n')
        aliases = "".join(f"    <alias>{escape(a)}</alias>\n" for a in entry["aliases"]) if with_aliases else ""
        return (head + '  <Resolver name="S=Simbad (via url):    4ms">\n'
                f'    <otype>G</otype>\n    <jpos>..</jpos>\n'
                f'    <jradeg>{entry["ra"]}</jradeg>\n    <jdedeg>{entry["dec"]}</jdedeg>\n'
                f'    <refPos>2006AJ....131.1163S</refPos>\n    <oname>{escape(entry["oname"])}</oname>\n'
                f'{aliases}    <nrefs>1000</nrefs>\n  </Resolver>\n</Target>\n</Sesame>\n')

    def ned_json(self, name: str) -> dict[str, Any]:
        """NED ObjectLookup's answer: ResultCode 3 with a Preferred position, or 0 for an unknown name."""
        entry = self.lookup(name)
        common = {"NameResolver": "NED-Egret", "Copyright": "(C) 2026 California Institute of Technology",
                  "Version": "2.0", "Supplied": name, "StatusCode": 100, "QueryTime": "2026-01-01 00:00:00"}
        if entry is None:
            return {**common, "ResultCode": 0, "Interpreted": {"Name": name}}
        ned_name = entry.get("ned_name") or entry["oname"]
        return {**common, "ResultCode": 3, "Interpreted": {"Name": ned_name},
                "Preferred": {"Name": ned_name, "ObjType": {"Value": "G", "RefCode": None},
                              "Position": {"RA": entry["ra"], "Dec": entry["dec"], "UncSemiMajor": 0.5,
                                           "UncSemiMinor": 0.5, "PosAngle": 0.0, "RefCode": "2006AJ....131.1163S"},
                              "Redshift": {"Value": -0.000597, "Uncertainty": 1e-5, "RefCode": None,
                                           "QualityFlag": None}}}

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, service: str) -> str:
        return {
            "sdss": f"{self.base}/dr16/SkyServerWS/ImgCutout/getjpeg",
            "legacy": f"{self.base}/viewer/jpeg-cutout",
            "sesame": f"{self.base}/cgi-bin/nph-sesame/-oxpI/SNV",
            "ned": f"{self.base}/srs/ObjectLookup",
            "hyperleda": f"{self.base}/hyperleda/fG.cgi",
        }[service]

    def reset(self) -> None:
        """Forget counts and misbehaviour (between two phases of one test)."""
        with self._lock:
            self.requests.clear()
            self.last_params.clear()
            self.behaviours.update({k: Behaviour() for k in SERVICES})

    def configure(self, settings: Any) -> None:
        """Point a pytest-django ``settings`` fixture (or any settings object) at this server."""
        settings.SDSS_CUTOUT_URL = self.url("sdss")
        settings.LEGACY_SURVEY_CUTOUT_URL = self.url("legacy")
        settings.SESAME_URL = self.url("sesame")
        settings.NED_LOOKUP_URL = self.url("ned")
        settings.HYPERLEDA_URL = self.url("hyperleda")
        settings.REMOTE_TIMEOUT_S = 2.0
        settings.REMOTE_RETRIES = 1

    def __enter__(self) -> FakeAstroServices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- HyperLEDA -------------------------------------------------------------------------------------

# Galaxies as HyperLEDA's meandata gives them (al2000 in hours). PGC 987654 is the ESO galaxy above that
# Sesame knows by name but OpenNGC lacks; PGC 3098765 is known to HyperLEDA alone.
LEDA_OBJECTS: dict[int, dict[str, Any]] = {
    987654: {"objname": "ESO123-045", "al2000": 20.0833333, "de2000": -58.5, "type": "Sc", "logd25": 1.12,
             "pa": 118.5, "logr25": 0.52, "incl": 76.3, "e_incl": 2.1},
    3098765: {"objname": "SDSSJ123456.78+123456.7", "al2000": 12.5824389, "de2000": 12.5824167, "type": "Sbc",
              "logd25": 0.71, "pa": 42.0, "logr25": 0.31, "incl": 62.0, "e_incl": 3.4},
    3098766: {"objname": "PGC3098766", "al2000": 12.60, "de2000": 12.60, "type": "", "logd25": "",
              "pa": "", "logr25": 0.15, "incl": "", "e_incl": ""},
}


def hyperleda_select(objects: dict[int, dict[str, Any]], where: str) -> list[int]:
    """The PGC numbers an SQL condition ``pgc=N`` or ``objname='X'`` selects (others select nothing)."""
    where = " ".join(where.split())
    if where.startswith("pgc="):
        try:
            pgc = int(where[4:])
        except ValueError:
            return []
        return [pgc] if pgc in objects else []
    if where.startswith("objname='") and where.endswith("'"):
        name = where[len("objname='"):-1].upper()
        return [pgc for pgc, row in objects.items() if row["objname"].upper() == name]
    return []


def hyperleda_answer(objects: dict[int, dict[str, Any]], params: dict[str, str]) -> str:
    """HyperLEDA's ``a=csv[;]`` answer to a meandata query: comments, a padded header, padded rows."""
    if params.get("n") != "meandata" or not params.get("a", "").startswith("csv"):
        return "<html>Unknown request</html>"
    names = [c.strip() for c in params.get("d", "").split(",") if c.strip()]
    where = params.get("sql", "")
    lines = ["# HyperLeda (fake) SQL output", f"# sql: {where}", ";".join(f" {n:>10} " for n in names)]
    for pgc in hyperleda_select(objects, where):
        row = {"pgc": pgc, **objects[pgc]}
        lines.append(";".join(f" {row.get(n, '')!s:>10} " for n in names))
    return "\n".join(lines) + "\n"


@dataclass
class FakeHyperLeda:
    """HyperLEDA's SQL interface (``GET …/fG.cgi?n=meandata&c=o&…&d=<columns>&sql=<where>&a=csv[;]``) on its
    own local server. Understands ``pgc=N`` and ``objname='X'``; answers ``#`` comments, a header and
    ``;``-separated padded rows as HyperLEDA does, empty cells for unknown values.

    ``with FakeHyperLeda() as leda: leda.configure(settings)``; ``behaviour`` misbehaves like the others
    (delay, failures before success, garbage); ``requests`` counts calls, ``last_params`` keeps the last query.
    ``FakeAstroServices`` answers the same protocol at ``url("hyperleda")`` (the ``fake_services`` fixture
    points ``HYPERLEDA_URL`` there), so page and API tests find PGC 3098765 without another server.
    """

    behaviour: Behaviour = field(default_factory=Behaviour)
    objects: dict[int, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(LEDA_OBJECTS))
    requests: int = 0
    last_params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                if not parsed.path.endswith("/fG.cgi"):
                    self._send(404, b"not found", "text/plain")
                    return
                with fake._lock:
                    fake.requests += 1
                    fake.last_params = params
                    fail = fake.behaviour.failures_before_success > 0
                    if fail:
                        fake.behaviour.failures_before_success -= 1
                if fake.behaviour.delay_s:
                    time.sleep(fake.behaviour.delay_s)
                if fail:
                    self._send(fake.behaviour.fail_status, b"<html><body>Internal Server Error</body></html>", "text/html")
                elif fake.behaviour.garbage:
                    self._send(200, b"<html><body>Down for maintenance</body></html>", "text/html")
                else:
                    self._send(200, hyperleda_answer(fake.objects, params).encode(), "text/plain")

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: object, client_address: object) -> None:
                return

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/fG.cgi"

    def configure(self, settings: Any) -> None:
        """Point Django settings at this server, resolvers on, short time-out, one retry."""
        settings.HYPERLEDA_URL = self.url
        settings.REMOTE_RESOLVERS_ENABLED = True
        settings.REMOTE_TIMEOUT_S = 2.0
        settings.REMOTE_RETRIES = 1

    def __enter__(self) -> FakeHyperLeda:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Legacy Survey FITS cut-outs (the Zoo's ingestion) ----------------------------------------------------------


@dataclass
class FakeSkyGalaxy:
    """A galaxy the fake FITS service draws at its position: astronomical PA (north through east), inclination
    (Holmberg axis ratio, q0 = 0.2) and D25 in arcmin."""

    ra: float
    dec: float
    pa: float = 30.0
    inclination: float = 60.0
    d25_arcmin: float = 1.0


def fits_cutout_bytes(*, galaxy: FakeSkyGalaxy, npix: int, pixscale: float, bands: str,
                      observed: str = "griz", seed: int = 0) -> bytes:
    """A Legacy-Survey-like ``fits-cutout``: a (bands, npix, npix) float32 cube in nanomaggies, rows bottom-up
    (FITS order), headers ``BANDS`` and ``BAND0``…; a band outside ``observed`` is all zeros, as the viewer sends.

    The galaxy is an exponential disk (scale length D25 / 6.4) with a bulge, redder in i and z, at ``pa`` measured
    from north (up) towards east (left), plus a field star and sky noise."""
    from astropy.io import fits

    y, x = np.mgrid[0:npix, 0:npix].astype(np.float64)
    x -= (npix - 1) / 2
    y -= (npix - 1) / 2  # display orientation: y grows downwards (south)
    pa = np.radians(galaxy.pa)
    along = -x * np.sin(pa) - y * np.cos(pa)  # towards the PA: up and to the left
    across = -x * np.cos(pa) + y * np.sin(pa)
    cos_i = np.cos(np.radians(galaxy.inclination))
    q = np.sqrt(cos_i**2 * (1 - 0.04) + 0.04)
    scale_px = galaxy.d25_arcmin * 60.0 / 6.4 / pixscale
    disk = 3.0 * np.exp(-np.hypot(along, across / q) / scale_px)
    bulge = 6.0 * np.exp(-(np.hypot(along, across / max(q, 0.6)) / (0.15 * scale_px)) ** 2)
    star = 20.0 * np.exp(-((x - npix * 0.3) ** 2 + (y + npix * 0.28) ** 2) / 4.0)
    colour = {"g": (0.55, 0.4), "r": (1.0, 1.0), "i": (1.25, 1.5), "z": (1.4, 1.8)}
    rng = np.random.default_rng(seed)
    planes = []
    for band in bands:
        disk_k, bulge_k = colour.get(band, (1.0, 1.0))
        plane = disk_k * disk + bulge_k * bulge + star + rng.normal(0.0, 0.03, (npix, npix))
        planes.append(plane if band in observed else np.zeros((npix, npix)))
    cube = np.asarray(planes, dtype=np.float32)[:, ::-1, :]  # FITS rows run bottom-up
    header = fits.Header()
    header["BANDS"] = bands
    for k, band in enumerate(bands):
        header[f"BAND{k}"] = band
    header["PIXSCALE"] = pixscale
    buffer = io.BytesIO()
    fits.PrimaryHDU(data=np.ascontiguousarray(cube), header=header).writeto(buffer)
    return buffer.getvalue()


@dataclass
class FakeLegacyFitsService:
    """The Legacy Survey viewer's ``GET /viewer/fits-cutout?ra=&dec=&layer=&pixscale=&size=&bands=`` on its own
    local server. Galaxies in ``sky`` are drawn where they are (nearest within 1′), elsewhere a default one.

    ``observed`` names the bands that have data (the rest come back as zero planes), ``dec_footprint`` the sky
    with any data (outside it: all planes zero), ``failures_before_success`` answers HTTP 500 first. Every
    request's time is kept in ``request_times`` (rate-limit checks) and its parameters in ``params``.

    Use it as ``with FakeLegacyFitsService() as fits_fake: fits_fake.configure(settings)``.
    """

    sky: list[FakeSkyGalaxy] = field(default_factory=list)
    observed: str = "griz"
    dec_footprint: tuple[float, float] = (-90.0, 90.0)
    failures_before_success: int = 0
    request_times: list[float] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                if not parsed.path.endswith("/fits-cutout"):
                    self._send(404, b"not found", "text/plain")
                    return
                with fake._lock:
                    fake.request_times.append(time.monotonic())
                    fake.params.append(params)
                    fail = fake.failures_before_success > 0
                    fake.failures_before_success -= int(fail)
                if fail:
                    self._send(500, b"<html>Internal Server Error</html>", "text/html")
                    return
                try:
                    ra, dec = float(params["ra"]), float(params["dec"])
                    npix, pixscale = int(params.get("size", 256)), float(params.get("pixscale", 0.262))
                    bands = params.get("bands", "grz")
                except (KeyError, ValueError):
                    self._send(400, b"<html>bad request</html>", "text/html")
                    return
                if not 0 < npix <= 3000 or not bands or any(b not in "grizy" for b in bands):
                    self._send(400, b"<html>bad size or bands</html>", "text/html")
                    return
                low, high = fake.dec_footprint
                observed = fake.observed if low <= dec <= high else ""
                body = fits_cutout_bytes(galaxy=fake.galaxy_at(ra, dec), npix=npix, pixscale=pixscale, bands=bands,
                                         observed=observed, seed=int(abs(ra * 1000 + dec * 10)) % 2**31)
                self._send(200, body, "image/fits")

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: object, client_address: object) -> None:
                return

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def galaxy_at(self, ra: float, dec: float) -> FakeSkyGalaxy:
        for galaxy in self.sky:
            if abs(galaxy.dec - dec) < 1 / 60 and abs((galaxy.ra - ra + 180) % 360 - 180) < 1 / 60:
                return galaxy
        return FakeSkyGalaxy(ra=ra, dec=dec)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/viewer/fits-cutout"

    def configure(self, settings: Any) -> None:
        settings.LEGACY_SURVEY_FITS_URL = self.url

    def __enter__(self) -> FakeLegacyFitsService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
