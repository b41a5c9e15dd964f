"""Finding the vendor tools, and the synthesis command a job runs.

The default command is the vendor flow hls4ml itself runs on the project it wrote:

* Vitis backend: ``vitis-run --tcl build_prj.tcl --mode hls`` (Vitis >= 2024.2, what hls4ml 1.3
  calls) or ``vitis_hls -f build_prj.tcl`` (older Vitis HLS); options come from
  ``build_opt.tcl``, which the job writes;
* Vivado backend: ``vivado_hls -f build_prj.tcl "reset=1 csim=0 synth=1 ... vsynth=0|1"``;
* ``vsynth: true`` (Vivado logic synthesis, ``vivado_synth.rpt``) also needs ``vivado``.

Tools are looked up in the configured paths (YAML ``synthesis.tools``) and then on ``PATH``; an
absent tool raises :class:`ToolNotFoundError` before any project is written. Any other command
(``synthesis.command``) is a list of arguments with placeholders ``{project_dir}``,
``{project_name}``, ``{python}`` (this interpreter) and ``{config_dir}`` (the YAML's folder).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connas4ml_torch.errors import ToolNotFoundError  # noqa: F401 (re-exported)

__all__ = ["ToolNotFoundError", "SynthTool", "find_tool", "vendor_tool", "custom_tool",
           "VENDOR_TOOLS"]

VENDOR_TOOLS = ("vitis-run", "vitis_hls", "vivado_hls", "vivado")
_FIX = ("source the Xilinx settings script first (e.g. `source <Xilinx>/Vitis/<version>/"
        "settings64.sh`) or set its path in the sweep YAML under synthesis.tools.{name}")


@dataclass(frozen=True)
class SynthTool:
    """The command a job runs, the tool's identity for hashing, and its version when known."""

    name: str                       # vitis_hls | vitis-run | vivado_hls | custom:<argv0>
    argv: tuple[str, ...]           # with placeholders, e.g. ("{python}", "x.py", "{project_dir}")
    version: str | None = None
    vsynth: bool = False
    paths: dict[str, str] = field(default_factory=dict)  # resolved executables (not hashed)
    writes_build_opt: bool = False  # Vitis: options go to build_opt.tcl

    def command(self, project_dir: str | os.PathLike, project_name: str,
                config_dir: str | os.PathLike = ".") -> list[str]:
        """The argument list for one project (placeholders filled in, executable resolved)."""
        subst = {"project_dir": str(project_dir), "project_name": project_name,
                 "python": sys.executable, "config_dir": str(config_dir)}
        out = [a.format(**subst) for a in self.argv]
        if out and out[0] in self.paths:
            out[0] = self.paths[out[0]]
        return out

    @property
    def identity(self) -> str:
        """What the content hash sees: tool name and command template (no machine paths)."""
        return f"{self.name}:{' '.join(self.argv)}"


def find_tool(name: str, configured: Mapping[str, str] | None = None) -> str | None:
    """Path of ``name`` from ``configured`` (file, folder or its ``bin``) or ``PATH``, else None."""
    p = (configured or {}).get(name)
    if p:
        path = Path(os.path.expandvars(os.path.expanduser(p)))
        for cand in (path, path / name, path / "bin" / name):
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
        return None
    return shutil.which(name)


def _version_from_path(path: str) -> str | None:
    # Xilinx installs live under .../<Tool>/<YYYY.N>/bin/<tool>: the folder names the version.
    m = re.search(r"/(20\d\d\.\d)(?:/|$)", path)
    return m.group(1) if m else None


def vendor_tool(backend: str, vsynth: bool = False, configured: Mapping[str, str] | None = None,
                version: str | None = None) -> SynthTool:
    """The vendor flow for ``backend``; raises :class:`ToolNotFoundError` naming the tool."""
    configured = dict(configured or {})
    unknown = set(configured) - set(VENDOR_TOOLS)
    if unknown:
        raise ValueError(f"synthesis.tools: unknown tool names {sorted(unknown)}; "
                         f"allowed: {', '.join(VENDOR_TOOLS)}")
    paths: dict[str, str] = {}
    if backend == "Vitis":
        for name, argv in (("vitis-run", ("vitis-run", "--tcl", "build_prj.tcl", "--mode", "hls")),
                           ("vitis_hls", ("vitis_hls", "-f", "build_prj.tcl"))):
            p = find_tool(name, configured)
            if p:
                paths[name] = p
                tool = SynthTool(name, argv, version or _version_from_path(p), vsynth, paths,
                                 writes_build_opt=True)
                break
        else:
            where = configured.get("vitis_hls") or configured.get("vitis-run")
            raise ToolNotFoundError(
                "Vitis HLS not found: neither `vitis-run` nor `vitis_hls` is "
                + (f"at the configured path {where!r}" if where else "on PATH")
                + "; " + _FIX.format(name="vitis_hls"))
    elif backend == "Vivado":
        p = find_tool("vivado_hls", configured)
        if not p:
            where = configured.get("vivado_hls")
            raise ToolNotFoundError(
                "`vivado_hls` not found "
                + (f"at the configured path {where!r}" if where else "on PATH")
                + "; " + _FIX.format(name="vivado_hls").replace("Vitis", "Vivado"))
        paths["vivado_hls"] = p
        opts = ("reset=1 csim=0 synth=1 cosim=0 validation=0 export=0 "
                f"vsynth={int(vsynth)} fifo_opt=0")
        tool = SynthTool("vivado_hls", ("vivado_hls", "-f", "build_prj.tcl", opts),
                         version or _version_from_path(p), vsynth, paths)
    else:
        raise ValueError(f"hls.backend: {backend!r} has no vendor flow; use Vitis or Vivado")
    if vsynth:
        v = find_tool("vivado", configured)
        if not v:
            raise ToolNotFoundError(
                "`vivado` (needed for synthesis.vsynth: true) not found "
                + (f"at the configured path {configured['vivado']!r}" if "vivado" in configured
                   else "on PATH")
                + "; " + _FIX.format(name="vivado") + ", or set synthesis.vsynth: false")
        paths["vivado"] = v
    return tool


def custom_tool(argv: Sequence[str], version: str | None = None,
                config_dir: str | os.PathLike = ".") -> SynthTool:
    """A user-given command (e.g. the tests' stand-in); its executable must exist now."""
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"synthesis.command: expected a list of strings, got {argv!r}")
    exe = argv[0].format(python=sys.executable, config_dir=str(config_dir),
                         project_dir="", project_name="")
    found = exe if (os.path.isfile(exe) and os.access(exe, os.X_OK)) else shutil.which(exe)
    if not found:
        raise ToolNotFoundError(
            f"synthesis.command: executable {argv[0]!r} (-> {exe!r}) not found or not executable; "
            "give an absolute path, a name on PATH, or {python} for this interpreter")
    for a in argv[1:]:  # a script argument that names a missing file is caught here too
        if a.endswith(".py"):
            script = Path(a.format(python=sys.executable, config_dir=str(config_dir),
                                   project_dir="", project_name=""))
            if not script.is_file():
                raise ToolNotFoundError(f"synthesis.command: script {str(script)!r} not found")
    shown = argv[1] if argv[0] == "{python}" and len(argv) > 1 else argv[0]
    return SynthTool(f"custom:{Path(shown).name}", tuple(argv), version)
