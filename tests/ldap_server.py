"""A real OpenLDAP ``slapd`` on loopback for the LDAP sign-in tests (Debian's ``slapd``).

Started once per test module from a throw-away ``slapd.conf`` (mdb database in a temp
directory) and loaded with ``slapadd`` before it starts, so there is nothing to wait for but
the port. Skips with a reason when slapd is not installed (``scripts/test.sh`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUFFIX = "dc=omni,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=omni-svc,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "svc-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ADMINS = f"cn=omni-admins,{GROUPS}"
SUPERVISORS = f"cn=omni-supervisors,{GROUPS}"
OPERATORS = f"cn=omni-operators,{GROUPS}"
USER_PASSWORD = "dir-pass-123"
SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"

# People and their groups: alice is an admin and an operator (admin wins), bob a supervisor,
# olga an operator, nina in no Omni group.
PEOPLE_GROUPS = {
    "alice": [ADMINS, OPERATORS],
    "bob": [SUPERVISORS],
    "olga": [OPERATORS],
    "nina": [],
}


def _ldif() -> str:
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Omni test\ndc: omni\n",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: omni-svc\n"
        f"sn: svc\nuserPassword: {SERVICE_PASSWORD}\n",
    ]
    parts.extend(
        f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()} Directory\n"
        f"sn: Directory\nmail: {uid}@omni.test\nuserPassword: {USER_PASSWORD}\n"
        for uid in PEOPLE_GROUPS
    )
    for group in (ADMINS, SUPERVISORS, OPERATORS):
        # groupOfNames needs a member: the service account keeps every group non-empty.
        members = [SERVICE_DN, *(f"uid={u},{PEOPLE}" for u, gs in PEOPLE_GROUPS.items() if group in gs)]
        cn = group.split(",")[0].split("=")[1]
        lines = "".join(f"member: {dn}\n" for dn in members)
        parts.append(f"dn: {group}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
    return "\n".join(parts)


def _conf(root: Path) -> str:
    schema = Path("/etc/ldap/schema")
    includes = "".join(f"include {schema / name}.schema\n" for name in ("core", "cosine", "inetorgperson"))
    return (
        f"{includes}"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {root / 'slapd.pid'}\nargsfile {root / 'slapd.args'}\n"
        "database mdb\nmaxsize 10485760\n"
        f'suffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw {ROOT_PASSWORD}\n'
        f"directory {root / 'db'}\n"
        "access to attrs=userPassword by anonymous auth by self write by * none\n"
        "access to * by * read\n"
    )


@dataclass(frozen=True)
class Slapd:
    url: str
    port: int


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(f"slapd exited with {proc.returncode}: {err!r}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a condition (the port), not waiting for time to pass
    raise RuntimeError("slapd did not open its port")


def run_slapd(tmp: Path, port: int) -> Iterator[Slapd]:
    if not Path(SLAPD).exists() or not Path(SLAPADD).exists():
        pytest.skip("slapd is not installed (apt install slapd ldap-utils; scripts/test.sh does it)")
    (tmp / "db").mkdir(parents=True)
    conf = tmp / "slapd.conf"
    conf.write_text(_conf(tmp))
    data = tmp / "data.ldif"
    data.write_text(_ldif())
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(data)], check=True, capture_output=True)
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [SLAPD, "-h", f"{url}/", "-f", str(conf), "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(port, proc)
        yield Slapd(url=url, port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
