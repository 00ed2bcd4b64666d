#!/usr/bin/python3
"""Writes a pure-Python wheel holding one module, for tests that install packages without an
index (there is no PyPI here): make_wheel.py DIR NAME VERSION SOURCE writes
DIR/NAME-VERSION-py3-none-any.whl whose module NAME is SOURCE. Standard library only."""
import base64
import hashlib
import os
import sys
import zipfile


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(directory: str, name: str, version: str, source: str) -> str:
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": source.encode(),
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\n"
                                  f"Version: {version}\n").encode(),
        f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: submarine-tests\n"
                               b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for member, data in files.items():
            wheel.writestr(member, data)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: make_wheel.py DIR NAME VERSION SOURCE")
    print(make_wheel(*sys.argv[1:]))
