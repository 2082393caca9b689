"""The one module that runs LibreOffice: headless conversion of formats mailbot cannot read itself (.doc, WPS).

Each conversion runs in a private temporary directory with the input under a fixed name (the attachment's own
name is never a path). One LibreOffice profile directory is reused for the life of a `LibreOffice` object: the
first start builds it (2-5 s), later calls take about a second.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from mailbot.errors import MailbotError

log = logging.getLogger(__name__)

# (data, source extension, target extension) -> converted bytes; raises ConversionError.
Converter = Callable[[bytes, str, str], bytes]

_EXTENSIONS = frozenset({"doc", "docx", "xls", "xlsx", "ods", "odt", "wps", "et", "rtf", "pdf", "csv", "html"})


class ConversionError(MailbotError):
    """LibreOffice is missing, failed, timed out or produced nothing."""


class LibreOffice:
    """A converter backed by the `soffice` program; callable as a `Converter`."""

    def __init__(self, program: str | None = None, timeout_seconds: int = 60) -> None:
        self.program = program or _find_program()
        self.timeout_seconds = timeout_seconds
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        # One profile cannot be used by two LibreOffice processes at once.
        self._lock = threading.Lock()

    def available(self) -> bool:
        return self.program is not None

    def __call__(self, data: bytes, source_ext: str, target_ext: str) -> bytes:
        return self.convert(data, source_ext, target_ext)

    def convert(self, data: bytes, source_ext: str, target_ext: str) -> bytes:
        """The file converted to `target_ext` (e.g. "doc" -> "docx"); ConversionError on any failure."""
        for extension in (source_ext, target_ext):
            if extension not in _EXTENSIONS:
                raise ConversionError(f"unexpected file extension {extension!r}")
        if self.program is None:
            raise ConversionError("LibreOffice (soffice) is not installed")
        with self._lock, tempfile.TemporaryDirectory(prefix="mailbot-convert-") as folder:
            work = Path(folder)
            source = work / f"input.{source_ext}"
            source.write_bytes(data)
            self._run(self._command(self.program, source, target_ext, work / "out"))
            return _output(work / "out" / f"input.{target_ext}")

    def close(self) -> None:
        """Removes the profile directory."""
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    def __enter__(self) -> LibreOffice:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _command(self, program: str, source: Path, target_ext: str, outdir: Path) -> list[str]:
        if self._profile is None:
            self._profile = tempfile.TemporaryDirectory(prefix="mailbot-lo-profile-")
        profile = Path(self._profile.name).as_uri()
        return [
            program,
            "--headless",
            "--norestore",
            "--nolockcheck",
            f"-env:UserInstallation={profile}",
            "--convert-to",
            target_ext,
            "--outdir",
            str(outdir),
            str(source),
        ]

    def _run(self, command: list[str]) -> None:
        try:
            completed = _run_killing_group(command, self.timeout_seconds)
        except subprocess.TimeoutExpired as error:
            raise ConversionError(f"LibreOffice took longer than {self.timeout_seconds} s") from error
        except OSError as error:
            raise ConversionError(f"LibreOffice could not start: {error}") from error
        if completed.returncode != 0:
            log.info("soffice failed (%s): %s", completed.returncode, completed.stderr[-500:])
            raise ConversionError(f"LibreOffice exited with {completed.returncode}")


def _run_killing_group(command: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    # A new session, so that a timeout kills LibreOffice's whole process group, not just the launcher script.
    with subprocess.Popen(  # noqa: S603 - the program is soffice from PATH; the file name is ours, not the sender's
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _output(path: Path) -> bytes:
    if not path.is_file() or path.stat().st_size == 0:
        raise ConversionError("LibreOffice produced no output (the file may be damaged or password-protected)")
    return path.read_bytes()


def _find_program() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")
