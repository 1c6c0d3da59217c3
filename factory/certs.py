"""A local certificate authority and server certificates for development (``make certs``) and tests.

Production uses certificates from its own CA or a public one, given to the services as secret
files (docker-compose.yml). Here ``openssl`` makes a CA (``ca.crt``/``ca.key``) and one server
certificate (``server.crt``/``server.key``) valid for the given host names and addresses; the
private keys are created 0600. Clients trust ``ca.crt`` (``MQTT_CA_FILE``).
"""

import ipaddress
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DAYS = 825  # the longest validity clients accept for a server certificate


def _openssl(*args: str) -> None:
    subprocess.run([shutil.which("openssl") or "openssl", *args], check=True, capture_output=True)  # noqa: S603


def _san(hosts: list[str]) -> str:
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def make_certs(directory: Path, hosts: list[str], *, name: str = "server") -> dict[str, Path]:
    """Create the CA (once) and ``<name>.crt``/``<name>.key`` for ``hosts`` (again when asked for other hosts)."""
    if not hosts:
        raise ValueError("Give at least one host name or address for the server certificate.")
    directory.mkdir(parents=True, exist_ok=True)
    ca_crt, ca_key = directory / "ca.crt", directory / "ca.key"
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    old_umask = os.umask(0o077)  # keys are never readable by others, not even briefly
    try:
        if not ca_crt.exists():
            _openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(ca_key), "-out", str(ca_crt), "-days", str(DAYS * 4),
                "-subj", "/CN=Smart Factory IoT local CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            )  # fmt: skip
        with tempfile.TemporaryDirectory() as work:
            csr, ext = Path(work) / "server.csr", Path(work) / "server.ext"
            ext.write_text(
                f"subjectAltName={_san(hosts)}\nextendedKeyUsage=serverAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n"
            )
            _openssl(
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hosts[0]}",
            )  # fmt: skip
            _openssl(
                "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(crt), "-days", str(DAYS), "-extfile", str(ext),
            )  # fmt: skip
    finally:
        os.umask(old_umask)
    ca_crt.chmod(0o644)
    crt.chmod(0o644)
    return {"ca": ca_crt, "cert": crt, "key": key}
